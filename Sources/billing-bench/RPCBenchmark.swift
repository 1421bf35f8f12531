import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingTransport
import Foundation
import NIOPosix
import Synchronization

/// Unary calls per second with p50/p99 latency at several concurrency levels,
/// and server-stream messages per second, over mutual TLS on 127.0.0.1.
/// Server and load generator share the machine (and its cores), as the Go
/// ttrpc reference figure in docs/BENCHMARKS.md does.
enum RPCBenchmark {
    static func run(secondsPerLevel: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-rpc-bench-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try DevelopmentCertificates.ensure(in: directory)

        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await TTRPCServer.start(
            host: "127.0.0.1",
            port: 0,
            tls: try TLSContext(
                TLSConfiguration(
                    role: .server,
                    certificateChainPath: "\(directory)/server.pem",
                    privateKeyPath: "\(directory)/server-key.pem",
                    trustRootsPath: "\(directory)/ca.pem"
                )
            ),
            services: [BenchHealth()],
            group: serverGroup
        )
        let clientTLS = try TLSContext(
            TLSConfiguration(
                role: .client(serverName: "localhost"),
                certificateChainPath: "\(directory)/internal.pem",
                privateKeyPath: "\(directory)/internal-key.pem",
                trustRootsPath: "\(directory)/ca.pem"
            )
        )
        let transport = TTRPCClient(
            host: "127.0.0.1",
            port: server.localAddress!.port!,
            tls: clientTLS,
            group: clientGroup
        )
        let client = GrpcHealthV1.HealthClient(transport: transport)
        try await unaryLevels(client, secondsPerLevel: secondsPerLevel)

        // Server stream: one stream, as many messages as it can take.
        let watch = BenchHealth.streamCount
        var streamRequest = GrpcHealthV1.HealthCheckRequest()
        streamRequest.service = String(watch)
        let start = ContinuousClock.now
        var received = 0
        for try await _ in try await client.watch(streamRequest) { received += 1 }
        let elapsed = ContinuousClock.now - start
        print("server stream: \(received) messages in \(elapsed), \(perSecond(received, elapsed)) messages/s")

        await transport.close()
        await server.shutdown(grace: .seconds(1))
        try await clientGroup.shutdownGracefully()
        try await serverGroup.shutdownGracefully()
    }

    /// The unary figures against a server someone else started (the Go ttrpc
    /// reference server of deploy/bench-rpc, or a running billingd).
    static func runClient(host: String, port: Int, certificates: String, secondsPerLevel: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tls = try TLSContext(
            TLSConfiguration(
                role: .client(serverName: "localhost"),
                certificateChainPath: "\(certificates)/internal.pem",
                privateKeyPath: "\(certificates)/internal-key.pem",
                trustRootsPath: "\(certificates)/ca.pem"
            )
        )
        let transport = TTRPCClient(host: host, port: port, tls: tls, group: group)
        try await unaryLevels(GrpcHealthV1.HealthClient(transport: transport), secondsPerLevel: secondsPerLevel)
        await transport.close()
        try await group.shutdownGracefully()
    }

    static func unaryLevels(_ client: GrpcHealthV1.HealthClient, secondsPerLevel: Int) async throws {
        let request = GrpcHealthV1.HealthCheckRequest()
        _ = try await client.check(request)
        print("unary Health/Check over mutual TLS, one connection, \(secondsPerLevel) s per level")
        print("in flight   calls/s   p50 µs   p99 µs")
        for inFlight in [1, 16, 64, 256] {
            let (calls, latencies) = try await measure(inFlight: inFlight, seconds: secondsPerLevel) {
                _ = try await client.check(request)
            }
            let sorted = latencies.sorted()
            print(
                String(
                    format: "%9d %9d %8d %8d",
                    inFlight,
                    calls / secondsPerLevel,
                    sorted[sorted.count / 2],
                    sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
                )
            )
        }
    }

    /// Keeps `inFlight` calls running for `seconds`; returns the count and
    /// each call's latency in microseconds.
    static func measure(
        inFlight: Int,
        seconds: Int,
        _ call: @escaping @Sendable () async throws -> Void
    ) async throws -> (Int, [Int]) {
        let end = ContinuousClock.now.advanced(by: .seconds(seconds))
        return try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<inFlight {
                group.addTask {
                    var latencies: [Int] = []
                    latencies.reserveCapacity(100_000)
                    while ContinuousClock.now < end {
                        let start = ContinuousClock.now
                        try await call()
                        let (s, atto) = (ContinuousClock.now - start).components
                        latencies.append(Int(s) * 1_000_000 + Int(atto / 1_000_000_000_000))
                    }
                    return latencies
                }
            }
            var all: [Int] = []
            for try await latencies in group { all += latencies }
            return (all.count, all)
        }
    }
}

/// Health as the benchmark needs it: Check answers SERVING with no other
/// work (what `HealthService` does, minus its lock), Watch streams the number
/// of messages named in the request.
private struct BenchHealth: GrpcHealthV1.HealthService {
    static let streamCount = 200_000

    func check(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext
    ) async throws -> GrpcHealthV1.HealthCheckResponse {
        var response = GrpcHealthV1.HealthCheckResponse()
        response.status = .serving
        return response
    }

    func watch(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext,
        stream: ServerStreamWriter<GrpcHealthV1.HealthCheckResponse>
    ) async throws {
        var response = GrpcHealthV1.HealthCheckResponse()
        response.status = .serving
        for _ in 0..<(Int(request.service) ?? 0) { try await stream.write(response) }
    }
}
