import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingTransport
import Foundation
import NIOCore
import NIOPosix
import Testing

/// No one client, and nobody without a certificate, can take the room
/// others need: raw TCP floods, one identity's many connections, and many
/// account-scoped clients each leave a well-behaved (or privileged) client
/// served.
@Suite struct ConnectionAdmissionTests {
    /// Opens plain TCP connections that never say anything.
    static func rawConnections(_ count: Int, to port: Int, group: any EventLoopGroup) async throws -> [any Channel] {
        var channels: [any Channel] = []
        for _ in 0..<count {
            channels.append(try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get())
        }
        return channels
    }

    /// Waits (bounded) until the server has seen `count` connections.
    static func waitAccepted(_ f: TransportFixture, _ count: Int) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while f.server.admission.counts.acceptedTotal < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func healthy(_ client: TTRPCClient) async -> Bool {
        do {
            return try await GrpcHealthV1.HealthClient(transport: client).check(TransportFixture.request("x")).status
                == .serving
        } catch {
            return false
        }
    }

    @Test func aFloodOfConnectionsThatNeverHandshakeLeavesRoomForRealClients() async throws {
        var limits = ServerLimits()
        limits.maxUnauthenticatedConnections = 8
        // A handshake timeout longer than the test: only the waiting room's
        // eviction can make room.
        let f = try await TransportFixture(limits: limits, handshakeTimeout: .seconds(600))
        let flood = try await Self.rawConnections(50, to: f.port, group: f.group)
        try await Self.waitAccepted(f, 50)
        #expect(f.server.admission.counts.unauthenticated == 8, "the waiting room holds at most 8")
        let client = try f.client()
        #expect(await Self.healthy(client), "a real client is served during the flood")
        #expect(f.server.admission.counts.admitted == 1)
        await client.close()
        for channel in flood { try? await channel.close() }
        await f.stop()
    }

    @Test func oneIdentityCannotTakeMoreThanItsShare() async throws {
        var limits = ServerLimits()
        limits.maxConnectionsPerPeer = 2
        let f = try await TransportFixture(limits: limits)
        let first = try f.client("operator"), second = try f.client("operator"), third = try f.client("operator")
        #expect(await Self.healthy(first))
        #expect(await Self.healthy(second))
        #expect(await Self.healthy(third) == false, "a third connection of the same certificate is refused")
        let other = try f.client("internal")
        #expect(await Self.healthy(other), "another identity is still served")
        // A closed connection gives its room back.
        await first.close()
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while f.server.admission.counts.admitted > 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let again = try f.client("operator")
        #expect(await Self.healthy(again))
        for client in [second, third, other, again] { await client.close() }
        await f.stop()
    }

    @Test func theReservedRoomStaysForPrivilegedPeers() async throws {
        var limits = ServerLimits()
        limits.maxConnections = 3
        limits.reservedPrivilegedConnections = 1
        // "operator" is privileged here; "internal" and the account certificate stand for ordinary peers.
        let f = try await TransportFixture(
            limits: limits,
            classify: { peer in
                peer.uris.contains("billing://operator/dev") ? .privileged : .ordinary
            }
        )
        try f.issueClientCertificate("account", uris: ["billing://account/acc-1"])
        let ordinary1 = try f.client("internal"), ordinary2 = try f.client("account")
        #expect(await Self.healthy(ordinary1))
        #expect(await Self.healthy(ordinary2))
        let ordinary3 = try f.client("internal")
        #expect(await Self.healthy(ordinary3) == false, "ordinary peers may not take the reserved connection")
        let privileged = try f.client("operator")
        #expect(await Self.healthy(privileged), "the reserved connection is there for a privileged peer")
        for client in [ordinary1, ordinary2, ordinary3, privileged] { await client.close() }
        await f.stop()
    }
}
