import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingTransport
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Real TLS sockets on 127.0.0.1, a real client, generated certificates.
@Suite struct EndToEndTests {
    @Test func unaryCallCarriesThePeerFromTheCertificate() async throws {
        let f = try await TransportFixture()
        let health = try f.health("operator")
        #expect(try await health.check(TransportFixture.request("peer")).status == .serving)
        let internalClient = try f.health("internal")
        #expect(try await internalClient.check(TransportFixture.request("peer")).status == .notServing)
        let peers = f.service.peers.withLock { $0 }
        #expect(peers.contains(PeerIdentity(commonName: "dev-operator", uris: ["billing://operator/dev"])))
        await f.stop()
    }

    @Test func manyCallsAtOnceShareOneConnection() async throws {
        let f = try await TransportFixture()
        let health = try f.health()
        try await withThrowingTaskGroup(of: GrpcHealthV1.HealthCheckResponse.ServingStatus.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await health.check(TransportFixture.request(index % 10 == 0 ? "slow:20" : "x")).status
                }
            }
            for try await status in group { #expect(status == .serving) }
        }
        #expect(f.server.connectionCount == 1)
        await f.stop()
    }

    @Test func serverStreamDeliversEveryMessageInOrderToItsEnd() async throws {
        let f = try await TransportFixture()
        let health = try f.health()
        var next: Int32 = 1000
        for try await response in try await health.watch(TransportFixture.request("count:50000")) {
            guard response.status == .unrecognized(next) else {
                Issue.record("message \(next - 1000) is \(response.status)")
                break
            }
            next += 1
        }
        #expect(next == 1000 + 50_000)
        await f.stop()
    }

    @Test func aSlowStreamConsumerPausesTheConnectionInsteadOfLosingMessages() async throws {
        let f = try await TransportFixture()
        let health = GrpcHealthV1.HealthClient(transport: try f.client(maxBuffered: 16))
        var next: Int32 = 1000
        for try await response in try await health.watch(TransportFixture.request("count:3000")) {
            #expect(response.status == .unrecognized(next))
            next += 1
            if next % 500 == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(next == 1000 + 3000)
        await f.stop()
    }

    @Test func serverDeadlineFromTimeoutNanoIsEnforced() async throws {
        let f = try await TransportFixture()
        // A raw client has no timer of its own: the DEADLINE_EXCEEDED can only
        // come from the server; the handler never answers by itself.
        let raw = try await RawFrameClient(f)
        let slow = try GrpcHealthV1.HealthCheckRequest.serviceNamed("hold:never").serializedBytes()
        try await raw.send(
            streamID: 1,
            type: .request,
            payload: try RawFrameClient.requestEnvelope(
                service: "grpc.health.v1.Health",
                method: "Check",
                payload: slow,
                timeoutNano: 100_000_000
            )
        )
        #expect(try await raw.status(on: 1, within: .seconds(60))?.code == .deadlineExceeded)

        // The typed client's own deadline gives the same status.
        await #expect(throws: RPCError(.deadlineExceeded, "deadline exceeded")) {
            try await f.health().check(
                TransportFixture.request("hold:never"),
                options: CallOptions(timeout: .milliseconds(100))
            )
        }
        await f.stop()
    }

    @Test func unknownServiceAndMethodAreUnimplemented() async throws {
        let f = try await TransportFixture()
        let client = try f.client()
        do {
            _ = try await client.unary(
                MethodDescriptor(service: "nope.Service", method: "X", kind: .unary),
                request: [],
                options: CallOptions()
            )
            Issue.record("an unknown service answered")
        } catch let error as RPCError {
            #expect(error.code == .unimplemented)
        }
        do {
            _ = try await client.unary(
                MethodDescriptor(service: "grpc.health.v1.Health", method: "Nope", kind: .unary),
                request: [],
                options: CallOptions()
            )
            Issue.record("an unknown method answered")
        } catch let error as RPCError {
            #expect(error.code == .unimplemented)
        }
        await f.stop()
    }

    @Test func aHandlerErrorThatIsNotAStatusIsUnknownWithoutDetails() async throws {
        let f = try await TransportFixture()
        await #expect(throws: RPCError(.unknown, "the handler failed")) {
            try await f.health().check(TransportFixture.request("fail"))
        }
        await f.stop()
    }

    @Test func clientWithoutACertificateIsRefusedAndOthersAreServed() async throws {
        let f = try await TransportFixture()
        // A certificate from another CA.
        let stranger = try CertificateAuthority(commonName: "other")
        try DevelopmentCertificates.write(
            try stranger.issue(commonName: "mallory", usage: .client),
            name: "mallory",
            in: f.directory
        )
        await #expect(throws: RPCError.self) { try await f.health("mallory").check(TransportFixture.request("x")) }
        // An expired one from the right CA.
        let authority = try CertificateAuthority(
            loading: PEMCredential(
                certificatePEM: try String(contentsOfFile: "\(f.directory)/ca.pem", encoding: .utf8),
                privateKeyPEM: try String(contentsOfFile: "\(f.directory)/ca-key.pem", encoding: .utf8)
            )
        )
        let now = Int64(Date().timeIntervalSince1970)
        try DevelopmentCertificates.write(
            try authority.issue(
                commonName: "old",
                usage: .client,
                notBefore: now - 90 * 86_400,
                notAfter: now - 86_400
            ),
            name: "expired",
            in: f.directory
        )
        await #expect(throws: RPCError.self) { try await f.health("expired").check(TransportFixture.request("x")) }
        #expect(try await f.health().check(TransportFixture.request("x")).status == .serving)
        await f.stop()
    }

    @Test func gracefulShutdownLetsCallsFinishThenEndsStreams() async throws {
        let f = try await TransportFixture()
        let health = try f.health()
        async let held = health.check(TransportFixture.request("hold:shutdown"))
        let stream = try await health.watch(TransportFixture.request("forever-slow"))
        var iterator = stream.makeAsyncIterator()
        _ = try await iterator.next()
        try await f.service.waitForHeld("shutdown")
        let shutdown = Task { await f.server.shutdown(grace: .seconds(10)) }
        f.service.release("shutdown")
        #expect(try await held.status == .serving, "a call running at shutdown finishes")
        var ended: RPCError?
        do {
            while try await iterator.next() != nil {}
        } catch let error as RPCError {
            ended = error
        }
        #expect(ended?.code == .unavailable)
        await shutdown.value
        try? await f.group.shutdownGracefully()
    }

    @Test func connectionsOverTheLimitAreClosed() async throws {
        var limits = ServerLimits()
        limits.maxConnections = 1
        let f = try await TransportFixture(limits: limits)
        let first = try f.health()
        #expect(try await first.check(TransportFixture.request("x")).status == .serving)
        await #expect(throws: RPCError.self) { try await f.health().check(TransportFixture.request("x")) }
        #expect(try await first.check(TransportFixture.request("x")).status == .serving)
        await f.stop()
    }
}
