/// Request metadata: ordered key/value pairs, keys lower-case ASCII, a key may
/// repeat. Carried in `billing.v1.Request.metadata`.
public struct Metadata: Sendable, Hashable, Sequence {
    public private(set) var entries: [(key: String, value: String)]

    /// The well-known keys this project reads.
    public enum Key {
        /// Correlates log lines across services; echoed in server logs.
        public static let requestID = "request-id"
        /// Makes a call that creates or moves money safe to repeat.
        public static let idempotencyKey = "idempotency-key"
    }

    public init(_ entries: [(key: String, value: String)] = []) {
        self.entries = entries.map { (key: $0.key.lowercased(), value: $0.value) }
    }

    public mutating func add(_ key: String, _ value: String) {
        entries.append((key: key.lowercased(), value: value))
    }

    /// The first value of `key`.
    public subscript(key: String) -> String? {
        let wanted = key.lowercased()
        return entries.first { $0.key == wanted }?.value
    }

    /// Key and value bytes summed: what the server's metadata limit counts.
    public var byteCount: Int {
        entries.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> {
        entries.makeIterator()
    }

    public static func == (lhs: Metadata, rhs: Metadata) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }
}
