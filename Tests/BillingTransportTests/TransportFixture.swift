import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingWire
import Foundation
import NIOCore
import NIOPosix
import Synchronization

@testable import BillingTransport

/// A health service whose behaviour the test picks by the service name it
/// asks about: "hold:<name>" runs until the test releases that name (or the
/// call is cancelled), "slow:<ms>" sleeps, "peer" answers SERVING only for
/// the operator certificate, "fail" throws a non-RPC error; Watch streams
/// "count:<n>" messages or, for "forever", until cancelled.
final class ScriptedHealth: GrpcHealthV1.HealthService {
    let peers = Mutex<[PeerIdentity]>([])
    let cancelledStreams = Atomic<Int>(0)
    let sent = Atomic<Int>(0)
    /// Held calls by name: how many started, how many ended, and whether released.
    private let holds = Mutex<[String: (started: Int, ended: Int, released: Bool)]>([:])

    /// Lets every call held under `name` answer.
    func release(_ name: String) {
        holds.withLock { $0[name, default: (0, 0, false)].released = true }
    }

    /// Waits (bounded, generously) until `count` calls held under `name`
    /// have started, or ended.
    func waitForHeld(_ name: String, started count: Int = 1, ended: Bool = false) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while holds.withLock({ ended ? $0[name]?.ended ?? 0 : $0[name]?.started ?? 0 }) < count {
            guard ContinuousClock.now < deadline else {
                throw Failure(description: "\(count) calls held as \(name) did not \(ended ? "end" : "start")")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    private func hold(_ name: String) async throws {
        holds.withLock { $0[name, default: (0, 0, false)].started += 1 }
        defer { holds.withLock { $0[name, default: (0, 0, false)].ended += 1 } }
        while !holds.withLock({ $0[name]?.released ?? false }) {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description = "scripted failure"
    }

    func check(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext
    ) async throws -> GrpcHealthV1.HealthCheckResponse {
        peers.withLock { $0.append(context.peer) }
        var response = GrpcHealthV1.HealthCheckResponse()
        response.status = .serving
        if request.service.hasPrefix("hold:") {
            try await hold(String(request.service.dropFirst(5)))
        } else if request.service.hasPrefix("slow:"), let ms = Int(request.service.dropFirst(5)) {
            try await Task.sleep(for: .milliseconds(ms))
        } else if request.service == "peer" {
            response.status = context.peer.uris == ["billing://operator/dev"] ? .serving : .notServing
        } else if request.service == "fail" {
            throw Failure()
        } else if request.service == "big" {
            response.status = .unrecognized(1)
        }
        return response
    }

    func watch(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext,
        stream: ServerStreamWriter<GrpcHealthV1.HealthCheckResponse>
    ) async throws {
        var response = GrpcHealthV1.HealthCheckResponse()
        response.status = .serving
        if request.service.hasPrefix("count:"), let count = Int(request.service.dropFirst(6)) {
            // Each message carries its index (as an enum value this build
            // does not know), so order and completeness can be checked.
            for index in 0..<count {
                var numbered = GrpcHealthV1.HealthCheckResponse()
                numbered.status = .unrecognized(Int32(1000 + index))
                try await stream.write(numbered)
                sent.add(1, ordering: .relaxed)
            }
            return
        }
        do {
            while true {
                try await stream.write(response)
                sent.add(1, ordering: .relaxed)
                if request.service == "forever-slow" { try await Task.sleep(for: .milliseconds(5)) }
            }
        } catch {
            cancelledStreams.add(1, ordering: .relaxed)
            throw error
        }
    }
}

/// A server stream of large messages, for as long as the client takes them:
/// with messages this large any kernel's socket buffers fill after a bounded
/// number of them, whatever its autotuning limits, so a test of backpressure
/// does not depend on the machine's `tcp_rmem`/`tcp_wmem`.
final class FloodService: RPCService {
    static let descriptor = MethodDescriptor(service: "test.Flood", method: "Flood", kind: .serverStreaming)
    static let messageBytes = 256 << 10
    let sent = Atomic<Int>(0)
    let ended = Atomic<Int>(0)

    var registeredMethods: [RegisteredMethod] {
        [
            .serverStreaming(Self.descriptor, GrpcHealthV1.HealthCheckRequest.self) {
                (_, _, stream: ServerStreamWriter<GrpcHealthV1.HealthCheckRequest>) in
                var message = GrpcHealthV1.HealthCheckRequest()
                message.service = String(repeating: "x", count: Self.messageBytes)
                do {
                    while true {
                        try await stream.write(message)
                        self.sent.add(1, ordering: .relaxed)
                    }
                } catch {
                    self.ended.add(1, ordering: .relaxed)
                    throw error
                }
            }
        ]
    }
}

/// A server on 127.0.0.1 port 0 with the development certificate set in a
/// temporary directory, and clients for it.
final class TransportFixture: Sendable {
    let directory: String
    let group: MultiThreadedEventLoopGroup
    let server: TTRPCServer
    let service: ScriptedHealth
    let port: Int

    /// - Parameter extraServices: served beside `service`, which owns Health
    ///   unless one of these does.
    init(
        limits: ServerLimits = ServerLimits(),
        handshakeTimeout: Duration = .seconds(120),
        classify: @escaping ConnectionAdmission.Classify = { _ in .ordinary },
        extraServices: () -> [any RPCService] = { [] }
    ) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("transport-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try DevelopmentCertificates.ensure(in: directory)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        service = ScriptedHealth()
        var configuration = TLSConfiguration(
            role: .server,
            certificateChainPath: "\(directory)/server.pem",
            privateKeyPath: "\(directory)/server-key.pem",
            trustRootsPath: "\(directory)/ca.pem"
        )
        configuration.handshakeTimeout = handshakeTimeout
        let extra = extraServices()
        server = try await TTRPCServer.start(
            host: "127.0.0.1",
            port: 0,
            tls: try TLSContext(configuration),
            services: Self.ownsHealth(extra) ? extra : [service] + extra,
            limits: limits,
            classify: classify,
            group: group
        )
        port = server.localAddress!.port!
    }

    private static func ownsHealth(_ services: [any RPCService]) -> Bool {
        services.contains { $0.registeredMethods.contains { $0.descriptor.service == "grpc.health.v1.Health" } }
    }

    /// Issues another client certificate from the fixture's CA.
    func issueClientCertificate(_ name: String, uris: [String]) throws {
        let authority = try CertificateAuthority(
            loading: PEMCredential(
                certificatePEM: try String(contentsOfFile: "\(directory)/ca.pem", encoding: .utf8),
                privateKeyPEM: try String(contentsOfFile: "\(directory)/ca-key.pem", encoding: .utf8)
            )
        )
        try DevelopmentCertificates.write(
            try authority.issue(commonName: name, usage: .client, uris: uris),
            name: name,
            in: directory
        )
    }

    func clientTLS(
        _ name: String = "operator",
        configure: (inout TLSConfiguration) -> Void = { _ in }
    ) throws -> TLSContext {
        var configuration = TLSConfiguration(
            role: .client(serverName: "127.0.0.1"),
            certificateChainPath: "\(directory)/\(name).pem",
            privateKeyPath: "\(directory)/\(name)-key.pem",
            trustRootsPath: "\(directory)/ca.pem"
        )
        configure(&configuration)
        return try TLSContext(configuration)
    }

    /// A client; generous timeouts, since a loaded test machine is slow and
    /// the tests prove behaviour, not deadlines.
    func client(
        _ name: String = "operator",
        maxBuffered: Int = 1024,
        streamStallTimeout: Duration = .seconds(300)
    ) throws -> TTRPCClient {
        TTRPCClient(
            host: "127.0.0.1",
            port: port,
            tls: try clientTLS(name),
            group: group,
            connectTimeout: .seconds(120),
            maxBufferedStreamMessages: maxBuffered,
            streamStallTimeout: streamStallTimeout
        )
    }

    func health(_ name: String = "operator") throws -> GrpcHealthV1.HealthClient {
        GrpcHealthV1.HealthClient(transport: try client(name))
    }

    func stop() async {
        await server.shutdown(grace: .seconds(1))
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func request(_ service: String) -> GrpcHealthV1.HealthCheckRequest {
        var request = GrpcHealthV1.HealthCheckRequest()
        request.service = service
        return request
    }
}

/// A TLS client that sends whatever frames (or bytes) a test gives it and
/// records every frame the server sends back: a peer that breaks the rules.
final class RawFrameClient: Sendable {
    let channel: any Channel
    static let receiveBufferBytes = 16 << 10

    init(_ fixture: TransportFixture) async throws {
        let tls = try fixture.clientTLS()
        // The collector goes in with the other handlers, so no frame (nor an
        // early close) can come before it is there.
        let collector = Collector()
        let bootstrap = ClientBootstrap(group: fixture.group)
            // A small, fixed receive buffer (set before connecting, which also
            // turns off the kernel's autotuning), so a test that stops reading
            // fills it after a known number of bytes.
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(Self.receiveBufferBytes))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try OpenSSLHandler(context: tls))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(limits: WireLimits()))
                    )
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        channel = try await bootstrap.connect(host: "127.0.0.1", port: fixture.port).get()
        self.collector = collector
    }

    let collector: Collector

    /// Records every frame the server sends.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = InboundFrame
        let received = Mutex<[Frame]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .frame(let frame) = unwrapInboundIn(data) {
                received.withLock { $0.append(frame) }
            }
        }
    }

    var frames: [Frame] { collector.received.withLock { $0 } }

    /// Sends raw bytes through TLS.
    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    func send(streamID: UInt32, type: FrameType, flags: FrameFlags = [], payload: [UInt8]) async throws {
        var buffer = ByteBuffer()
        buffer.writeFrameHeader(
            FrameHeader(length: UInt32(payload.count), streamID: streamID, type: type, flags: flags)
        )
        buffer.writeBytes(payload)
        try await send(buffer)
    }

    static func requestEnvelope(
        service: String,
        method: String,
        payload: [UInt8] = [],
        metadata: [(String, String)] = [],
        timeoutNano: Int64 = 0
    ) throws -> [UInt8] {
        var request = BillingV1.Request()
        request.service = service
        request.method = method
        request.payload = payload
        request.timeoutNano = timeoutNano
        request.metadata = metadata.map { pair in
            var entry = BillingV1.KeyValue()
            entry.key = pair.0
            entry.value = pair.1
            return entry
        }
        return try request.serializedBytes()
    }

    /// Waits (polling, bounded) for a frame on `streamID` (of `type`, when given).
    func frame(
        on streamID: UInt32,
        ofType type: FrameType? = nil,
        within: Duration = .seconds(30)
    ) async throws -> Frame? {
        let deadline = ContinuousClock.now.advanced(by: within)
        while ContinuousClock.now < deadline {
            if let frame = frames.first(where: { $0.streamID == streamID && (type == nil || $0.type == type) }) {
                return frame
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// The status of the Response frame on `streamID`.
    func status(on streamID: UInt32, within: Duration = .seconds(30)) async throws -> RPCError? {
        guard let frame = try await frame(on: streamID, within: within), frame.type == .response else { return nil }
        let response = try BillingV1.Response(serializedBytes: frame.payload.readableBytesView, limits: .default)
        return RPCError(status: response.status ?? BillingV1.Status())
    }
}
