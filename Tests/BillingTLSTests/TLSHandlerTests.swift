import BillingTLS
import Foundation
import NIOCore
import NIOEmbedded
import Testing

/// Captures what reaches the top of a TLS pipeline.
final class PlaintextRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = ""
    var handshake: TLSHandshakeCompleted?
    var errors: [any Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompleted { handshake = event }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }
}

/// A directory of PEM files for one test.
struct CertificateFixture {
    let directory: String
    let authority: CertificateAuthority

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        authority = try CertificateAuthority(commonName: "test CA")
        try DevelopmentCertificates.write(authority.credential, name: "ca", in: directory)
        try DevelopmentCertificates.write(
            try authority.issue(
                commonName: "billingd",
                usage: .server,
                dnsNames: ["localhost"],
                ipAddresses: ["127.0.0.1"]
            ),
            name: "server",
            in: directory
        )
        try DevelopmentCertificates.write(
            try authority.issue(commonName: "alice", usage: .client, uris: ["billing://operator/alice"]),
            name: "client",
            in: directory
        )
    }

    func path(_ name: String) -> String { "\(directory)/\(name).pem" }
    func keyPath(_ name: String) -> String { "\(directory)/\(name)-key.pem" }

    func server() throws -> TLSContext {
        try TLSContext(
            TLSConfiguration(
                role: .server,
                certificateChainPath: path("server"),
                privateKeyPath: keyPath("server"),
                trustRootsPath: path("ca")
            )
        )
    }

    func client(
        _ name: String = "client",
        serverName: String = "localhost",
        trust: String = "ca",
        configure: (inout TLSConfiguration) -> Void = { _ in }
    ) throws -> TLSContext {
        var configuration = TLSConfiguration(
            role: .client(serverName: serverName),
            certificateChainPath: path(name),
            privateKeyPath: keyPath(name),
            trustRootsPath: path(trust)
        )
        configure(&configuration)
        return try TLSContext(configuration)
    }
}

/// Two embedded channels with TLS handlers, bytes moved between them by hand:
/// the handler's behaviour with no sockets at all.
struct EmbeddedPair {
    let server = EmbeddedChannel()
    let client = EmbeddedChannel()
    let serverRecorder = PlaintextRecorder()
    let clientRecorder = PlaintextRecorder()

    init(server serverContext: TLSContext, client clientContext: TLSContext) throws {
        try server.pipeline.syncOperations.addHandler(OpenSSLHandler(context: serverContext))
        try server.pipeline.syncOperations.addHandler(serverRecorder)
        try client.pipeline.syncOperations.addHandler(OpenSSLHandler(context: clientContext))
        try client.pipeline.syncOperations.addHandler(clientRecorder)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
    }

    /// Moves bytes both ways until neither side has anything to say.
    func pump() throws {
        var moved = true
        while moved {
            moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                _ = try? server.writeInbound(bytes)
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                _ = try? client.writeInbound(bytes)
            }
        }
    }
}

@Suite struct TLSHandlerTests {
    @Test func handshakeCarriesDataBothWaysAndNamesThePeer() throws {
        let certificates = try CertificateFixture()
        let pair = try EmbeddedPair(server: try certificates.server(), client: try certificates.client())
        // Written before the handshake: held, then sent in order.
        pair.client.writeAndFlush(ByteBuffer(string: "hello "), promise: nil)
        pair.client.writeAndFlush(ByteBuffer(string: "server"), promise: nil)
        try pair.pump()
        #expect(pair.serverRecorder.handshake?.peer == TLSPeer(commonName: "alice", uris: ["billing://operator/alice"]))
        #expect(pair.serverRecorder.handshake?.version == "TLSv1.3")
        #expect(pair.clientRecorder.handshake?.peer?.commonName == "billingd")
        #expect(pair.serverRecorder.received == "hello server")
        pair.server.writeAndFlush(ByteBuffer(string: "hi"), promise: nil)
        try pair.pump()
        #expect(pair.clientRecorder.received == "hi")
    }

    @Test func bytesArrivingOneAtATimeStillHandshake() throws {
        let certificates = try CertificateFixture()
        let pair = try EmbeddedPair(server: try certificates.server(), client: try certificates.client())
        pair.client.writeAndFlush(ByteBuffer(string: "byte by byte"), promise: nil)
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(pair.client, pair.server), (pair.server, pair.client)] {
                while var bytes = try from.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    while let byte = bytes.readSlice(length: 1) { try to.writeInbound(byte) }
                }
            }
        }
        #expect(pair.serverRecorder.received == "byte by byte")
    }

    @Test func clientCertificateFromAnotherCAIsRefused() throws {
        let certificates = try CertificateFixture()
        let stranger = try CertificateAuthority(commonName: "other CA")
        try DevelopmentCertificates.write(
            try stranger.issue(commonName: "mallory", usage: .client),
            name: "mallory",
            in: certificates.directory
        )
        let pair = try EmbeddedPair(server: try certificates.server(), client: try certificates.client("mallory"))
        try pair.pump()
        #expect(pair.serverRecorder.handshake == nil)
        #expect(pair.serverRecorder.errors.contains { "\($0)".contains("certificate verify failed") })
        #expect(!pair.server.isActive)
    }

    @Test func expiredClientCertificateIsRefused() throws {
        let certificates = try CertificateFixture()
        let now = Int64(Date().timeIntervalSince1970)
        try DevelopmentCertificates.write(
            try certificates.authority.issue(
                commonName: "old",
                usage: .client,
                notBefore: now - 86_400 * 30,
                notAfter: now - 86_400
            ),
            name: "old",
            in: certificates.directory
        )
        let pair = try EmbeddedPair(server: try certificates.server(), client: try certificates.client("old"))
        try pair.pump()
        #expect(pair.serverRecorder.handshake == nil)
        #expect(pair.serverRecorder.errors.contains { "\($0)".contains("certificate") })
    }

    @Test func serverNameMismatchIsRefusedByTheClient() throws {
        let certificates = try CertificateFixture()
        let pair = try EmbeddedPair(
            server: try certificates.server(),
            client: try certificates.client(serverName: "billing.example.com")
        )
        try pair.pump()
        #expect(pair.clientRecorder.handshake == nil)
        #expect(pair.clientRecorder.errors.contains { ($0 as? TLSError) == .verificationFailed("hostname mismatch") })
    }

    @Test func tlsOnePointOneIsRefused() throws {
        let certificates = try CertificateFixture()
        let old = try certificates.client { configuration in
            configuration.minimumVersion = .tls1_0
            configuration.maximumVersion = .tls1_1
            configuration.cipherList = "DEFAULT:@SECLEVEL=0"
        }
        let pair = try EmbeddedPair(server: try certificates.server(), client: old)
        try pair.pump()
        #expect(pair.serverRecorder.handshake == nil)
        #expect(pair.serverRecorder.errors.map { "\($0)" } == ["TLS handshake failed: unsupported protocol"])
    }

    @Test func plainBytesOnTheTLSPortCloseTheConnection() throws {
        let certificates = try CertificateFixture()
        let channel = EmbeddedChannel()
        let recorder = PlaintextRecorder()
        try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: try certificates.server()))
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try? channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(!channel.isActive)
        #expect(recorder.received.isEmpty)
        #expect(recorder.errors.map { "\($0)" } == ["TLS handshake failed: http request"])
    }

    @Test func aKeyThatDoesNotMatchIsRefusedWithoutItsContents() throws {
        let certificates = try CertificateFixture()
        var configuration = TLSConfiguration(
            role: .server,
            certificateChainPath: certificates.path("server"),
            privateKeyPath: certificates.keyPath("client"),
            trustRootsPath: certificates.path("ca")
        )
        configuration.handshakeTimeout = .seconds(1)
        do {
            _ = try TLSContext(configuration)
            Issue.record("a mismatched key was accepted")
        } catch {
            #expect("\(error)".contains("client-key.pem"))
            #expect(!"\(error)".contains("PRIVATE KEY"))
        }
    }
}
