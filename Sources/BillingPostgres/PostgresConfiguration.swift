public import BillingCore

/// Where the PostgreSQL store connects and how (`storage.postgres` in
/// billingd's configuration).
///
/// The password is never part of the URL: it comes from a file or an
/// environment variable named in the configuration, and `description`
/// never shows it.
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    public enum TLS: Sendable, Equatable {
        /// Plain TCP (or a Unix socket): a database on the same host.
        case disable
        /// TLS required, the server's certificate checked against `caFile`
        /// (the system's roots when nil) and the host name.
        case verifyFull(caFile: String?)
    }

    /// A TCP host, or the folder of a Unix socket (a path starting with "/").
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var password: String?
    public var tls: TLS
    /// Connections for reads and lock-free writes; one more writes, one
    /// more listens.
    public var poolSize: Int
    /// A statement that runs longer is cancelled by the server (its
    /// transaction rolls back; the caller gets a retryable error).
    public var statementTimeout: Duration
    public var connectTimeout: Duration

    public init(
        host: String,
        port: Int = 5432,
        user: String,
        database: String,
        password: String? = nil,
        tls: TLS = .disable,
        poolSize: Int = 8,
        statementTimeout: Duration = .seconds(30),
        connectTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.password = password
        self.tls = tls
        self.poolSize = poolSize
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
    }

    /// `postgres://user@host:port/database`, `postgresql://…` too; a Unix
    /// socket as `postgres://user@/database?host=/run/postgresql`. A password
    /// in the URL is refused: it would end up in logs and process lists.
    public init(url: String, password: String? = nil, tls: TLS = .disable) throws(BillingError) {
        let text = url.trimmingSpaces
        guard text.utf8.count <= 2048 else { throw .invalidArgument("storage.postgres.url is longer than 2048 bytes") }
        var rest: Substring
        // Schemes are case-insensitive; what comes before "://" is not echoed (it could be a secret).
        if text.lowercased().hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else if text.lowercased().hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else {
            throw .invalidArgument("storage.postgres.url must start with postgres:// or postgresql://")
        }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw .invalidArgument("storage.postgres.url names no user (postgres://USER@host/database)")
        }
        let userPart = rest[..<at]
        guard !userPart.contains("@") else {
            throw .invalidArgument("storage.postgres.url has more than one @ (write an @ in a user name as %40)")
        }
        guard !userPart.contains(":") else {
            throw .invalidArgument(
                "storage.postgres.url carries a password: give it in storage.postgres.passwordFile or the variable storage.postgres.passwordEnvironment names instead"
            )
        }
        let user = try Self.decoded(userPart, "user")
        var hostPart = rest[rest.index(after: at)...]
        var database = ""
        if let slash = hostPart.firstIndex(of: "/") {
            database = try Self.decoded(hostPart[hostPart.index(after: slash)...], "database")
            hostPart = hostPart[..<slash]
        }
        var host = ""
        var port = 5432
        if let colon = hostPart.lastIndex(of: ":"), !hostPart.hasPrefix("[") || hostPart[..<colon].hasSuffix("]") {
            guard let number = Int(hostPart[hostPart.index(after: colon)...]), (1...65535).contains(number) else {
                throw .invalidArgument("storage.postgres.url has a port that is not 1 to 65535")
            }
            port = number
            hostPart = hostPart[..<colon]
        }
        host = try Self.decoded(hostPart, "host")
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = String(parts[0])
            let value = try Self.decoded(parts.count > 1 ? parts[1] : "", key)
            switch key {
            case "host":
                guard value.hasPrefix("/") else {
                    throw .invalidArgument("storage.postgres.url: host= takes a Unix socket's folder (a path from /)")
                }
                host = value
            case "sslmode":
                throw .invalidArgument("storage.postgres.url: set TLS with storage.postgres.tls, not sslmode")
            default:
                // Not echoed: a mistyped URL may carry a secret there.
                throw .invalidArgument(
                    "storage.postgres.url has an unknown parameter (only host=/socket/folder is taken)"
                )
            }
        }
        guard !user.isEmpty else { throw .invalidArgument("storage.postgres.url names no user") }
        guard !host.isEmpty else {
            throw .invalidArgument("storage.postgres.url names no host (or ?host=/socket/folder)")
        }
        guard !database.isEmpty else { throw .invalidArgument("storage.postgres.url names no database") }
        self.init(host: host, port: port, user: user, database: database, password: password, tls: tls)
    }

    /// Whether `host` is the folder of a Unix socket.
    public var isUnixSocket: Bool { host.hasPrefix("/") }

    /// Where it connects, for logs and `--check-config`: never the password.
    public var description: String {
        let place = isUnixSocket ? "socket \(host)/.s.PGSQL.\(port)" : "\(host):\(port)"
        let security: String
        switch tls {
        case .disable: security = "no TLS"
        case .verifyFull(let ca): security = "TLS verified against \(ca ?? "the system's roots")"
        }
        return "postgres://\(user)@\(place)/\(database) (\(security), password \(password == nil ? "none" : "set"))"
    }

    /// Percent-decoding of one URL part; control characters refused.
    private static func decoded(_ part: Substring, _ what: String) throws(BillingError) -> String {
        var bytes: [UInt8] = []
        var index = part.utf8.startIndex
        let utf8 = part.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first < utf8.endIndex, utf8.index(after: first) < utf8.endIndex,
                    let high = hexValue(utf8[first]), let low = hexValue(utf8[utf8.index(after: first)])
                else {
                    throw .invalidArgument("storage.postgres.url has a broken %-escape in its \(what)")
                }
                bytes.append(high << 4 | low)
                index = utf8.index(first, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains(where: \.isControl)
        else {
            throw .invalidArgument("storage.postgres.url has a \(what) that is not printable UTF-8")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

extension Unicode.Scalar {
    fileprivate var isControl: Bool { value < 0x20 || value == 0x7F }
}
