import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingTransport
import BillingWire
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Peers that break the rules, over real TLS on loopback. Each gets a clear
/// outcome, and the server keeps serving a well-behaved client throughout.
@Suite struct BadInputTests {
    static let health = "grpc.health.v1.Health"

    /// Runs `body` against a fresh server, then proves the server still serves.
    func withServer(
        limits: ServerLimits = ServerLimits(),
        handshakeTimeout: Duration = .seconds(120),
        _ body: (TransportFixture) async throws -> Void
    ) async throws {
        let f = try await TransportFixture(limits: limits, handshakeTimeout: handshakeTimeout)
        try await body(f)
        #expect(
            try await f.health().check(TransportFixture.request("x")).status == .serving,
            "the server still serves others"
        )
        await f.stop()
    }

    @Test func lengthPrefixOfFourGibibytesAndOfMaxPlusOneAreRefusedOnTheirStream() async throws {
        var limits = ServerLimits()
        limits.maxFrameBytes = 1024
        try await withServer(limits: limits) { f in
            let raw = try await RawFrameClient(f)
            var header = ByteBuffer()
            header.writeFrameHeader(FrameHeader(length: UInt32.max, streamID: 1, type: .request, flags: []))
            try await raw.send(header)
            #expect(try await raw.status(on: 1)?.code == .resourceExhausted)

            let raw2 = try await RawFrameClient(f)
            try await raw2.send(streamID: 1, type: .request, payload: [UInt8](repeating: 0, count: 1025))
            #expect(try await raw2.status(on: 1)?.code == .resourceExhausted)
            // The oversized payload was skipped: the next frame on the same connection works.
            try await raw2.send(
                streamID: 3,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check")
            )
            #expect(try await raw2.status(on: 3)?.code == .ok)
        }
    }

    @Test func evenAndReusedStreamIDsAreRefused() async throws {
        try await withServer { f in
            let raw = try await RawFrameClient(f)
            let request = try RawFrameClient.requestEnvelope(service: Self.health, method: "Check")
            try await raw.send(streamID: 2, type: .request, payload: request)
            #expect(try await raw.status(on: 2)?.code == .invalidArgument)
            try await raw.send(streamID: 5, type: .request, payload: request)
            #expect(try await raw.status(on: 5)?.code == .ok)
            try await raw.send(streamID: 3, type: .request, payload: request)
            #expect(try await raw.status(on: 3)?.code == .invalidArgument)
        }
    }

    @Test func unknownMessageTypeIsAnsweredAndIgnored() async throws {
        try await withServer { f in
            let raw = try await RawFrameClient(f)
            try await raw.send(streamID: 1, type: FrameType(rawValue: 0x7E), payload: [1, 2, 3])
            #expect(try await raw.status(on: 1)?.code == .unimplemented)
            try await raw.send(
                streamID: 3,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check")
            )
            #expect(try await raw.status(on: 3)?.code == .ok)
        }
    }

    @Test func dataOnAUnaryStreamEndsItWithInvalidArgument() async throws {
        try await withServer { f in
            let raw = try await RawFrameClient(f)
            // A handler that answers only when released: the Data frame surely arrives first.
            let held = try GrpcHealthV1.HealthCheckRequest.serviceNamed("hold:data").serializedBytes()
            try await raw.send(
                streamID: 1,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check", payload: held)
            )
            try await f.service.waitForHeld("data")
            try await raw.send(streamID: 1, type: .data, payload: [0x0A, 0x01, 0x41])
            #expect(try await raw.status(on: 1)?.code == .invalidArgument)
            // The handler was cancelled: once it has ended, and a later call on
            // the same connection is answered, stream 1 still has its one frame.
            try await f.service.waitForHeld("data", ended: true)
            try await raw.send(
                streamID: 3,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check")
            )
            #expect(try await raw.status(on: 3)?.code == .ok)
            #expect(raw.frames.filter { $0.streamID == 1 }.count == 1, "the cancelled handler writes nothing more")
        }
    }

    @Test func garbageEnvelopeAndWrongPayloadTypeAreInvalidArgument() async throws {
        try await withServer { f in
            let raw = try await RawFrameClient(f)
            try await raw.send(streamID: 1, type: .request, payload: Array("not protobuf at all \u{FF}".utf8))
            #expect(try await raw.status(on: 1)?.code == .invalidArgument)
            // Field 1 as a varint: not a HealthCheckRequest.
            try await raw.send(
                streamID: 3,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(
                    service: Self.health,
                    method: "Check",
                    payload: [0x08, 0x01]
                )
            )
            #expect(try await raw.status(on: 3)?.code == .invalidArgument)
            try await raw.send(
                streamID: 5,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(service: "no.Such", method: "Thing")
            )
            #expect(try await raw.status(on: 5)?.code == .unimplemented)
        }
    }

    @Test func metadataOverTheLimitIsRefused() async throws {
        try await withServer { f in
            let raw = try await RawFrameClient(f)
            let envelope = try RawFrameClient.requestEnvelope(
                service: Self.health,
                method: "Check",
                metadata: [("big", String(repeating: "x", count: 9000))]
            )
            try await raw.send(streamID: 1, type: .request, payload: envelope)
            #expect(try await raw.status(on: 1)?.code == .resourceExhausted)
        }
    }

    @Test func moreConcurrentStreamsThanAllowedAreRefused() async throws {
        var limits = ServerLimits()
        limits.maxConcurrentStreams = 4
        try await withServer(limits: limits) { f in
            let raw = try await RawFrameClient(f)
            // Four handlers held until released: surely running when the fifth arrives.
            let held = try GrpcHealthV1.HealthCheckRequest.serviceNamed("hold:limit").serializedBytes()
            for id in stride(from: UInt32(1), through: 7, by: 2) {
                try await raw.send(
                    streamID: id,
                    type: .request,
                    payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check", payload: held)
                )
            }
            try await f.service.waitForHeld("limit", started: 4)
            try await raw.send(
                streamID: 9,
                type: .request,
                payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check", payload: held)
            )
            #expect(try await raw.status(on: 9)?.code == .resourceExhausted)
            f.service.release("limit")
            for id in stride(from: UInt32(1), through: 7, by: 2) {
                #expect(try await raw.status(on: id, within: .seconds(60))?.code == .ok)
            }
        }
    }

    @Test func plainTCPAndHTTPBytesAreDroppedAtTheHandshake() async throws {
        try await withServer { f in
            let channel = try await ClientBootstrap(group: f.group).connect(host: "127.0.0.1", port: f.port).get()
            try await channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: billing\r\n\r\n")).get()
            try await withTimeout(.seconds(120)) { try await channel.closeFuture.get() }
        }
    }

    @Test func tlsOnePointZeroAndOnePointOneAreRefused() async throws {
        try await withServer { f in
            for version in [TLSConfiguration.Version.tls1_0, .tls1_1] {
                let old = try f.clientTLS { configuration in
                    configuration.minimumVersion = version
                    configuration.maximumVersion = version
                    configuration.cipherList = "DEFAULT:@SECLEVEL=0"
                }
                let client = GrpcHealthV1.HealthClient(
                    transport: TTRPCClient(host: "127.0.0.1", port: f.port, tls: old, group: f.group)
                )
                await #expect(throws: RPCError.self) { try await client.check(TransportFixture.request("x")) }
            }
        }
    }

    @Test func aHandshakeThatNeverFinishesIsClosed() async throws {
        // A 300 ms deadline: no real client is asked to beat it on a loaded
        // machine (the other tests prove the server keeps serving).
        let f = try await TransportFixture(handshakeTimeout: .milliseconds(300))
        let channel = try await ClientBootstrap(group: f.group).connect(host: "127.0.0.1", port: f.port).get()
        // Half a TLS record header, then silence. (On a loaded machine the
        // server may have closed it already; either way it must close.)
        try? await channel.writeAndFlush(ByteBuffer(bytes: [0x16, 0x03])).get()
        try await withTimeout(.seconds(120)) { try await channel.closeFuture.get() }
        await f.stop()
    }

    @Test func aClientThatStopsReadingAStreamIsCutOffAndCostsBoundedMemory() async throws {
        var limits = ServerLimits()
        limits.streamWriteTimeout = .milliseconds(500)
        let flood = FloodService()
        let f = try await TransportFixture(limits: limits, extraServices: { [flood] })
        let raw = try await RawFrameClient(f)
        // One call proves the handshake is done; then stop reading, so the
        // socket's receive buffer fills and TCP pushes back.
        try await raw.send(
            streamID: 1,
            type: .request,
            payload: try RawFrameClient.requestEnvelope(service: Self.health, method: "Check")
        )
        #expect(try await raw.status(on: 1)?.code == .ok)
        try await raw.channel.setOption(.autoRead, value: false).get()
        try await raw.send(
            streamID: 3,
            type: .request,
            flags: .remoteClosed,
            payload: try RawFrameClient.requestEnvelope(
                service: FloodService.descriptor.service,
                method: FloodService.descriptor.method
            )
        )
        // Messages of 256 KiB fill the kernel's buffers (bounded by tcp_wmem,
        // and the client's fixed SO_RCVBUF) after a bounded number of them,
        // then the writer waits: no timing of the machine is assumed. The wait
        // below is only a guard against hanging forever.
        let deadline = ContinuousClock.now.advanced(by: .seconds(300))
        while flood.ended.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let sent = flood.sent.load(ordering: .relaxed)
        #expect(flood.ended.load(ordering: .relaxed) == 1, "the stream was not ended; sent \(sent)")
        // The handler was suspended by backpressure, then ended: what it
        // produced fits in the kernel's buffers (the server's send buffer, the
        // client's receive buffer, which Linux doubles), the stream's window
        // of 256 KiB and the channel's watermark, not more.
        let heldBytes = Self.maximumSendBufferBytes() + RawFrameClient.receiveBufferBytes * 2 + (256 << 10) + (64 << 10)
        let bound = heldBytes / FloodService.messageBytes + 2
        #expect(sent <= bound, "sent \(sent) messages of 256 KiB to a client that read none (bound \(bound))")
        try await Task.sleep(for: .milliseconds(300))
        #expect(flood.sent.load(ordering: .relaxed) == sent, "nothing is produced after the stream ends")
        // Frames on stream 3 that the client now reads end with the status.
        try await raw.channel.setOption(.autoRead, value: true).get()
        raw.channel.read()
        let end = try await raw.frame(on: 3, ofType: .response, within: .seconds(60))
        let response = try end.map {
            try BillingV1.Response(serializedBytes: $0.payload.readableBytesView, limits: .default)
        }
        #expect(
            response?.status?.code == Int32(StatusCode.resourceExhausted.rawValue),
            "the stream ends RESOURCE_EXHAUSTED"
        )
        #expect(
            try await f.health().check(TransportFixture.request("x")).status == .serving,
            "the server still serves others"
        )
        await f.stop()
    }

    /// The most a socket's send buffer can grow to on this kernel (the third
    /// field of tcp_wmem; 4 MiB, Linux's default, where it cannot be read).
    static func maximumSendBufferBytes() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).last.flatMap { Int($0) } ?? 4 << 20
    }

    @Test func anIdleConnectionIsToldGoAwayAndClosed() async throws {
        var limits = ServerLimits()
        limits.idleTimeout = .milliseconds(300)
        // No "still serves others" check here: with a 300 ms idle limit a loaded
        // machine may idle out the checking client's handshake too.
        let f = try await TransportFixture(limits: limits)
        let raw = try await RawFrameClient(f)
        try await withTimeout(.seconds(120)) { try await raw.channel.closeFuture.get() }
        #expect(raw.frames.map(\.type) == [.goAway], "GOAWAY with the last stream id (none), then close")
        await f.stop()
    }

    @Test func aTLSClientWithNoCertificateIsRefused() async throws {
        try await withServer { f in
            let script = """
                import socket, ssl, sys
                c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.load_verify_locations(sys.argv[2])
                s = c.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5), server_hostname="localhost")
                try:
                    s.sendall(b"x" * 10); data = s.recv(10)
                    print("served" if data else "closed")
                except (ssl.SSLError, ConnectionError) as e:
                    print("refused", type(e).__name__)
                """
            let result = await StockClientInteropTests.run(
                "/usr/bin/python3",
                ["-c", script, "\(f.port)", "\(f.directory)/ca.pem"]
            )
            #expect(result.output.hasPrefix("refused") || result.output.hasPrefix("closed"), "\(result.output)")
        }
    }

    @Test func aDeadlineInTheEnvelopeEndsAServerStream() async throws {
        try await withServer { f in
            let client = try f.health()
            var count = 0
            do {
                for try await _ in try await client.watch(
                    TransportFixture.request("forever-slow"),
                    options: CallOptions(timeout: .milliseconds(200))
                ) {
                    count += 1
                }
                Issue.record("a forever stream ended without an error")
            } catch let error as RPCError {
                #expect(error.code == .deadlineExceeded)
            }
            #expect(count > 0)
        }
    }

    @Test func cancellingAStreamStopsTheServerHandler() async throws {
        try await withServer { f in
            let client = try f.health()
            let stream = try await client.watch(TransportFixture.request("forever-slow"))
            var iterator = stream.makeAsyncIterator()
            _ = try await iterator.next()
            stream.cancel()
            let deadline = ContinuousClock.now.advanced(by: .seconds(120))
            while f.service.cancelledStreams.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(f.service.cancelledStreams.load(ordering: .relaxed) == 1)
        }
    }

    /// The consumer's task cancelled mid-stream (a page closed, a task group
    /// cancelled): the stream is cancelled at the server too, not only
    /// forgotten by the client (the server kept sending, and held one of its
    /// streams per connection, until the connection closed).
    @Test func cancellingTheConsumersTaskStopsTheServerHandler() async throws {
        try await withServer { f in
            let client = try f.health()
            let reading = Task {
                for try await _ in try await client.watch(TransportFixture.request("forever-slow")) {}
            }
            let deadline = ContinuousClock.now.advanced(by: .seconds(120))
            while f.service.sent.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            reading.cancel()
            _ = await reading.result
            while f.service.cancelledStreams.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(f.service.cancelledStreams.load(ordering: .relaxed) == 1)
        }
    }
}

extension GrpcHealthV1.HealthCheckRequest {
    static func serviceNamed(_ name: String) -> Self {
        var request = Self()
        request.service = name
        return request
    }
}

struct TimedOut: Error {}

func withTimeout(_ duration: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            throw TimedOut()
        }
        try await group.next()
        group.cancelAll()
    }
}
