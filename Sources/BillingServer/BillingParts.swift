internal import BillingCore
internal import BillingTransport
internal import Hummingbird
internal import Logging
internal import NIOCore
internal import ServiceLifecycle
internal import Synchronization
internal import UnixSignals

// The long-running parts of billingd, each a `Service` of the one
// `ServiceGroup` (`BillingApplication`), which starts them together and, on
// SIGTERM, SIGINT or `shutdown()`, stops them one by one in the reverse of
// their order there; a part that fails ends the group the same way.

/// The RPC server, bound before the group starts (a port in use fails the
/// start itself). At shutdown it stops taking connections and lets running
/// calls finish within the grace period.
struct RPCServerPart: Service {
    let server: TTRPCServer
    let grace: Duration

    func run() async {
        try? await gracefulShutdown()
        await server.shutdown(grace: grace)
    }
}

/// The poller, from the moment billingd has started whole (every port
/// listening, the sandbox's URL known) until shutdown; never when the start
/// failed. Shutdown lets the checks in flight finish (`Poller.run`).
struct PollerPart: Service {
    let poller: Poller
    let started: Eventually<Void>

    func run() async {
        await cancelWhenGracefulShutdown {
            guard (try? await started.value()) != nil else { return }
            await poller.run()
        }
    }
}

/// The event hub, until shutdown: ending it ends every watch at once, with
/// where to resume (a watch never finishes by itself, so waiting for it
/// would only delay the stop).
struct EventHubPart: Service {
    let hub: EventHub

    func run() async {
        await cancelWhenGracefulShutdown { await hub.run() }
    }
}

/// Reloads on a signal (SIGHUP for billingd) until shutdown.
struct ReloadOnSignal: Service {
    let signals: UnixSignalsSequence
    let reload: @Sendable () async -> Bool

    func run() async {
        for await _ in signals.cancelOnGracefulShutdown() { _ = await reload() }
    }
}

/// The first thing a shutdown does: say so, and health says NOT_SERVING, so
/// load balancers send no new calls while the rest stops.
struct HealthAnnouncement: Service {
    let health: HealthService
    let logger: Logger

    func run() async {
        try? await gracefulShutdown()
        logger.info("billingd shutting down")
        health.setAllNotServing()
    }
}

/// A Hummingbird application (the webhook endpoint, the sandbox's page, the
/// metrics) and the port it listens on, known once it does.
///
/// It runs on NIO's process-wide event loops (`.singleton`, never shut
/// down), not on billingd's own group: Hummingbird's server can still be
/// finishing its shutdown on a task of its own (its quiescing helper fails a
/// promise on its loop) after its service returned, and billingd shuts its
/// group down as soon as the service group ends; on a group of our own that
/// race printed "Cannot schedule tasks on an EventLoop that has already shut
/// down" (and traps under SWIFTNIO_STRICT, and in NIO versions to come).
struct HTTPPart: Sendable {
    let application: Application<RouterResponder<BasicRequestContext>>
    let listening: Listening

    /// - Parameters:
    ///   - idleTimeout: how long a connection may send nothing before it is closed.
    init(
        router: Router<BasicRequestContext>,
        host: String,
        port: Int,
        name: String,
        idleTimeout: TimeAmount,
        logger: Logger
    ) {
        let listening = Listening()
        self.listening = listening
        application = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: name),
            onServerRunning: { channel in listening.succeed(channel.localAddress?.port ?? port) },
            eventLoopGroupProvider: .singleton,
            logger: logger
        )
    }
}

/// A port known once its server listens (`Eventually<Int>`), or the reason
/// it never will.
typealias Listening = Eventually<Int>

/// A value known later, once, or the reason it never will be: every waiter
/// gets the same answer. A waiting task that is cancelled stops waiting
/// (CancellationError), so a part waiting here never holds up a shutdown.
final class Eventually<Value: Sendable>: Sendable {
    private struct Waiting {
        var next: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
    }

    private enum State {
        case waiting(Waiting)
        case known(Value)
        case failed(any Error)
    }

    private let state = Mutex(State.waiting(Waiting()))

    init() {}

    func succeed(_ value: Value) {
        resolve(.success(value))
    }

    func fail(_ error: any Error) {
        resolve(.failure(error))
    }

    /// The value, once known; throws if it failed first or the task is cancelled.
    func value() async throws -> Value {
        let id = state.withLock { state -> UInt64 in
            guard case .waiting(var waiting) = state else { return 0 }
            waiting.next += 1
            state = .waiting(waiting)
            return waiting.next
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let now = state.withLock { state -> Result<Value, any Error>? in
                    switch state {
                    case .waiting(var waiting):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiting.waiters[id] = continuation
                        state = .waiting(waiting)
                        return nil
                    case .known(let value): return .success(value)
                    case .failed(let error): return .failure(error)
                    }
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> CheckedContinuation<Value, any Error>? in
                guard case .waiting(var waiting) = state else { return nil }
                let continuation = waiting.waiters.removeValue(forKey: id)
                state = .waiting(waiting)
                return continuation
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }

    private func resolve(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            guard case .waiting(let waiting) = state else { return [] }
            switch result {
            case .success(let value): state = .known(value)
            case .failure(let error): state = .failed(error)
            }
            return Array(waiting.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
