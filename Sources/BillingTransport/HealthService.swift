public import BillingAPI
public import BillingMessages
public import BillingRPC
internal import Synchronization

/// gRPC's standard health service (`grpc.health.v1.Health`) over ttrpc: a
/// serving status per service name, "" for the server as a whole. It touches
/// no database, so deployment probes can call it freely, and it is the
/// no-work baseline of the benchmark.
///
/// Thread-safe: statuses and watchers sit behind one mutex.
public final class HealthService: GrpcHealthV1.HealthService {
    public typealias Status = GrpcHealthV1.HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status]
        var watchers: [UInt64: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
        var nextWatcher: UInt64 = 0
    }

    private let state: Mutex<State>

    /// - Parameter services: the names to report, all starting as SERVING.
    public init(services: [String]) {
        state = Mutex(State(statuses: Dictionary(uniqueKeysWithValues: ([""] + services).map { ($0, Status.serving) })))
    }

    /// Changes a status and tells its watchers.
    public func setStatus(_ status: Status, for service: String = "") {
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// Every service NOT_SERVING (graceful shutdown starts here).
    public func setAllNotServing() {
        let names = state.withLock { Array($0.statuses.keys) }
        for name in names { setStatus(.notServing, for: name) }
    }

    public func check(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext
    ) async throws -> GrpcHealthV1.HealthCheckResponse {
        guard let status = state.withLock({ $0.statuses[request.service] }) else {
            throw RPCError(.notFound, "unknown service \(request.service.prefix(128))")
        }
        var response = GrpcHealthV1.HealthCheckResponse()
        response.status = status
        return response
    }

    /// The current status, then each change, until the caller leaves. An
    /// unknown service reports SERVICE_UNKNOWN (as gRPC's does) and may
    /// become known later.
    public func watch(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext,
        stream: ServerStreamWriter<GrpcHealthV1.HealthCheckResponse>
    ) async throws {
        // Only the newest status matters to a watcher: older ones are dropped.
        let (changes, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> UInt64 in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = (request.service, continuation)
            continuation.yield(state.statuses[request.service] ?? .serviceUnknown)
            return id
        }
        defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
        for await status in changes {
            var response = GrpcHealthV1.HealthCheckResponse()
            response.status = status
            try await stream.write(response)
        }
    }
}
