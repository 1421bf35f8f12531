internal import Synchronization

/// The panel's sign-in sessions, in memory: a restart signs everyone out,
/// which a development sign-in can afford (no passwords are lost).
///
/// A session is created on the first page a browser asks for (so even the
/// sign-in form carries a CSRF token of its own) and is replaced by a new id
/// when someone signs in (an id planted before sign-in is worth nothing
/// after it). Thread-safe: one mutex over the table; nothing under it waits.
final class Sessions: Sendable {
    struct Session: Sendable {
        let id: String
        /// Every form carries it; a POST without it changes nothing.
        let csrfToken: String
        var accountID: String?
        /// The last payment sent to a payment system's page: when the person
        /// comes back to the history, the panel asks billingd to check it at
        /// once instead of waiting for the poller.
        var awaitedPaymentID: String?
        var liveStreams = 0
        fileprivate var lastUsed: ContinuousClock.Instant
    }

    private struct Table {
        var sessions: [String: Session] = [:]
        var liveStreams = 0
    }

    private let table = Mutex(Table())
    private let idleTimeout: Duration
    private let maxSessions: Int
    private let maxLiveStreams: Int
    private let maxLiveStreamsPerSession: Int

    init(idleTimeout: Duration, maxSessions: Int, maxLiveStreams: Int, maxLiveStreamsPerSession: Int) {
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        self.maxLiveStreams = maxLiveStreams
        self.maxLiveStreamsPerSession = maxLiveStreamsPerSession
    }

    /// The live session of this id, marked used; nil if unknown or idle too long.
    func find(_ id: String?) -> Session? {
        guard let id, id.utf8.count == 64 else { return nil }
        let now = ContinuousClock.now
        return table.withLock { table -> Session? in
            guard var session = table.sessions[id] else { return nil }
            guard now - session.lastUsed < idleTimeout else {
                if session.liveStreams == 0 { table.sessions[id] = nil }
                return nil
            }
            session.lastUsed = now
            table.sessions[id] = session
            return session
        }
    }

    /// A new session, signed in as `accountID` (or not yet); `replacing` is forgotten.
    func create(accountID: String? = nil, replacing old: String? = nil) -> Session {
        let session = Session(
            id: Self.token(),
            csrfToken: Self.token(),
            accountID: accountID,
            lastUsed: ContinuousClock.now
        )
        table.withLock { table in
            if let old, table.sessions[old]?.liveStreams == 0 { table.sessions[old] = nil }
            if table.sessions.count >= maxSessions {
                // Idle ones first, then the least recently used: a flood of
                // new visitors costs old sessions, never memory.
                let now = ContinuousClock.now
                table.sessions = table.sessions.filter { now - $0.value.lastUsed < idleTimeout }
                while table.sessions.count >= maxSessions,
                    let oldest = table.sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })
                {
                    table.sessions[oldest.key] = nil
                }
            }
            table.sessions[session.id] = session
        }
        return session
    }

    func forget(_ id: String) {
        table.withLock { $0.sessions[id] = nil }
    }

    func update(_ id: String, _ change: (inout Session) -> Void) {
        table.withLock { table in
            guard var session = table.sessions[id] else { return }
            change(&session)
            table.sessions[id] = session
        }
    }

    /// Takes a live-stream place for the session; false when the panel or
    /// the session has none free.
    func startLiveStream(_ id: String) -> Bool {
        table.withLock { table in
            guard var session = table.sessions[id], table.liveStreams < maxLiveStreams,
                session.liveStreams < maxLiveStreamsPerSession
            else { return false }
            session.liveStreams += 1
            table.sessions[id] = session
            table.liveStreams += 1
            return true
        }
    }

    func endLiveStream(_ id: String) {
        table.withLock { table in
            table.liveStreams -= 1
            table.sessions[id]?.liveStreams -= 1
        }
    }

    /// 32 random bytes as 64 hex digits. `SystemRandomNumberGenerator` reads
    /// the kernel's generator (getrandom), fit for secrets.
    static func token() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for _ in 0..<32 {
            let byte = UInt8.random(in: 0...255, using: &generator)
            bytes.append(hex[Int(byte >> 4)])
            bytes.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Compares in time that does not depend on where they differ.
    static func sameToken(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
