internal import Foundation

/// billing-panel's configuration: a JSON file (example:
/// deploy/billing-panel.example.json), then `BILLING_PANEL_*` environment
/// variables and the command line, then defaults. Every field is optional in
/// the file; a field the panel does not know is refused (a typo must not
/// silently leave a default in place). `validate()` lists every problem.
public struct PanelConfiguration: Sendable, Codable, Hashable {
    /// How the panel reaches billingd: as an internal service, over mutual TLS.
    public struct Billingd: Sendable, Codable, Hashable {
        public var address: String = "127.0.0.1:7443"
        /// PEM files; when all three are empty, billingd's development set in
        /// `<dataDirectory>/tls` (the internal client certificate).
        public var certificate: String = ""
        public var privateKey: String = ""
        public var ca: String = ""
        /// The name billingd's certificate must carry; empty: localhost for a
        /// loopback address, else the address's host.
        public var serverName: String = ""
        /// Each call's deadline: a page waits at most this long for billingd.
        public var callTimeoutSeconds: Double = 10

        public init() {}

        private enum CodingKeys: String, CodingKey, CaseIterable {
            case address, certificate, privateKey, ca, serverName, callTimeoutSeconds
        }

        public init(from decoder: any Decoder) throws {
            try refuseUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Billingd()
            address = try container.decodeIfPresent(String.self, forKey: .address) ?? defaults.address
            certificate = try container.decodeIfPresent(String.self, forKey: .certificate) ?? defaults.certificate
            privateKey = try container.decodeIfPresent(String.self, forKey: .privateKey) ?? defaults.privateKey
            ca = try container.decodeIfPresent(String.self, forKey: .ca) ?? defaults.ca
            serverName = try container.decodeIfPresent(String.self, forKey: .serverName) ?? defaults.serverName
            callTimeoutSeconds =
                try container.decodeIfPresent(Double.self, forKey: .callTimeoutSeconds) ?? defaults.callTimeoutSeconds
        }
    }

    /// host:port the panel serves on. Loopback only: the development sign-in
    /// lets whoever reaches the page act as any account.
    public var listen: String = "127.0.0.1:7080"
    /// The panel's address as the browser sees it, for the payment systems'
    /// return links; empty: http:// and the address it listens on.
    public var publicURL: String = ""
    /// billingd's data folder, whose `tls/` holds the development certificates.
    public var dataDirectory: String = "./billingd-data"
    public var billingd = Billingd()
    /// A session unused this long is forgotten (the person signs in again).
    public var sessionIdleMinutes: Int = 60
    /// Sessions kept at most; the least recently used goes first. A session
    /// is about 200 bytes, so the default bounds them to a few MiB.
    public var maxSessions: Int = 10_000
    /// Live history pages (Server-Sent Events) at once. Each holds one stream
    /// of billingd's WatchPayments, and billingd allows 128 streams per
    /// connection; the panel keeps its watches on a connection of their own.
    public var maxLiveStreams: Int = 100
    /// Live history pages of one session at once (tabs and windows of one
    /// person); a newer one ends the oldest. Browsers open at most six
    /// connections to a site and each live page holds one: four leave two
    /// for the pages themselves.
    public var maxLiveStreamsPerSession: Int = 4
    /// Payments per page of the history.
    public var historyPageSize: Int = 20
    /// A live history page gets a comment this often when nothing happens,
    /// so proxies and browsers keep an idle stream open; it is also how soon
    /// the panel notices a browser that left (its stream's place frees at
    /// the next write).
    public var liveKeepAliveSeconds: Double = 15

    public init() {}

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, publicURL, dataDirectory, billingd, sessionIdleMinutes, maxSessions, maxLiveStreams,
            maxLiveStreamsPerSession, historyPageSize, liveKeepAliveSeconds
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = PanelConfiguration()
        listen = try container.decodeIfPresent(String.self, forKey: .listen) ?? defaults.listen
        publicURL = try container.decodeIfPresent(String.self, forKey: .publicURL) ?? defaults.publicURL
        dataDirectory = try container.decodeIfPresent(String.self, forKey: .dataDirectory) ?? defaults.dataDirectory
        billingd = try container.decodeIfPresent(Billingd.self, forKey: .billingd) ?? defaults.billingd
        sessionIdleMinutes =
            try container.decodeIfPresent(Int.self, forKey: .sessionIdleMinutes) ?? defaults.sessionIdleMinutes
        maxSessions = try container.decodeIfPresent(Int.self, forKey: .maxSessions) ?? defaults.maxSessions
        maxLiveStreams = try container.decodeIfPresent(Int.self, forKey: .maxLiveStreams) ?? defaults.maxLiveStreams
        maxLiveStreamsPerSession =
            try container.decodeIfPresent(Int.self, forKey: .maxLiveStreamsPerSession)
            ?? defaults.maxLiveStreamsPerSession
        historyPageSize =
            try container.decodeIfPresent(Int.self, forKey: .historyPageSize) ?? defaults.historyPageSize
        liveKeepAliveSeconds =
            try container.decodeIfPresent(Double.self, forKey: .liveKeepAliveSeconds) ?? defaults.liveKeepAliveSeconds
    }

    /// The file (if any), then the environment (`BILLING_PANEL_LISTEN`,
    /// `BILLING_PANEL_BILLINGD`, `BILLING_PANEL_PUBLIC_URL`, `BILLINGD_DATA_DIR`).
    public static func load(path: String?, environment: [String: String]) throws -> PanelConfiguration {
        var configuration = PanelConfiguration()
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PanelConfigurationError(problems: ["cannot read \(path)"])
            }
            guard data.count <= 1 << 20 else {
                throw PanelConfigurationError(problems: ["\(path) is over 1 MiB; a configuration is a few lines"])
            }
            do {
                configuration = try JSONDecoder().decode(PanelConfiguration.self, from: data)
            } catch let error as PanelConfigurationError {
                throw PanelConfigurationError(problems: error.problems.map { "\(path): \($0)" })
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                throw PanelConfigurationError(problems: [
                    "\(path) is not valid JSON: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)"
                        .prefix(300).description
                ])
            } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
                let field = context.codingPath.map(\.stringValue).joined(separator: ".")
                throw PanelConfigurationError(problems: [
                    field.isEmpty
                        ? "\(path) is not a JSON object" : "\(path): \(field) has the wrong type or is out of range"
                ])
            } catch {
                throw PanelConfigurationError(problems: ["\(path): \(error)"])
            }
        }
        if let listen = environment["BILLING_PANEL_LISTEN"] { configuration.listen = listen }
        if let address = environment["BILLING_PANEL_BILLINGD"] { configuration.billingd.address = address }
        if let url = environment["BILLING_PANEL_PUBLIC_URL"] { configuration.publicURL = url }
        if let directory = environment["BILLINGD_DATA_DIR"] { configuration.dataDirectory = directory }
        return configuration
    }

    /// Every problem, for people; empty when the configuration can serve.
    public func validate() -> [String] {
        var problems: [String] = []
        if let address = HostPort(listen) {
            if !["127.0.0.1", "::1", "localhost"].contains(address.host) {
                problems.append(
                    "listen must be a loopback address (127.0.0.1, ::1 or localhost), not \(address.host.prefix(64)): the development sign-in lets anyone who reaches the panel act as any account"
                )
            }
        } else {
            problems.append("listen must be host:port with a port from 0 to 65535, not \"\(listen.prefix(64))\"")
        }
        if HostPort(billingd.address) == nil || HostPort(billingd.address)?.port == 0 {
            problems.append("billingd.address must be host:port, not \"\(billingd.address.prefix(64))\"")
        }
        if !publicURL.isEmpty {
            let url = URL(string: publicURL)
            if url == nil || !["http", "https"].contains(url?.scheme ?? "") || (url?.host ?? "").isEmpty
                || publicURL.utf8.count > 1024
            {
                problems.append("publicURL must be an absolute http(s) URL of at most 1024 bytes")
            }
        }
        let files = [billingd.certificate, billingd.privateKey, billingd.ca]
        if files.contains("") && files.contains(where: { !$0.isEmpty }) {
            problems.append("billingd.certificate, privateKey and ca go together: give all three or none")
        }
        if !(0.1...300).contains(billingd.callTimeoutSeconds) {
            problems.append("billingd.callTimeoutSeconds must be 0.1 to 300")
        }
        if !(1...10_080).contains(sessionIdleMinutes) { problems.append("sessionIdleMinutes must be 1 to 10080") }
        if !(1...1_000_000).contains(maxSessions) { problems.append("maxSessions must be 1 to 1000000") }
        // billingd allows 128 streams a connection; a few stay free for the
        // stream that replaces one ending.
        if !(1...120).contains(maxLiveStreams) { problems.append("maxLiveStreams must be 1 to 120") }
        if !(1...100).contains(maxLiveStreamsPerSession) {
            problems.append("maxLiveStreamsPerSession must be 1 to 100")
        }
        if !(0.1...300).contains(liveKeepAliveSeconds) { problems.append("liveKeepAliveSeconds must be 0.1 to 300") }
        if !(1...200).contains(historyPageSize) {
            problems.append("historyPageSize must be 1 to 200 (billingd's page limit)")
        }
        return problems
    }

    /// The client certificate, key and CA in effect.
    public var tlsFiles: (certificate: String, privateKey: String, ca: String) {
        if billingd.certificate.isEmpty {
            let folder = dataDirectory + "/tls"
            return (folder + "/internal.pem", folder + "/internal-key.pem", folder + "/ca.pem")
        }
        return (billingd.certificate, billingd.privateKey, billingd.ca)
    }
}

/// "host:port" split, with [::1]:port for IPv6; nil when it is not one.
struct HostPort {
    let host: String
    let port: Int

    init?(_ text: String) {
        guard text.utf8.count <= 300, let colon = text.lastIndex(of: ":") else { return nil }
        let digits = text[text.index(after: colon)...]
        guard (1...5).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(digits), (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}

/// Problems with the configuration, for people; one per line.
public struct PanelConfigurationError: Error, CustomStringConvertible {
    public let problems: [String]

    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String {
        "the configuration is not valid:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Refuses keys the type does not know: a misspelt setting is an error, not a default.
private func refuseUnknownKeys(_ decoder: any Decoder, known: [String]) throws {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    let container = try decoder.container(keyedBy: AnyKey.self)
    let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
    guard unknown.isEmpty else {
        let prefix = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        throw PanelConfigurationError(
            problems: unknown.map { "unknown setting \(prefix.isEmpty ? $0 : prefix + "." + $0)" }
        )
    }
}
