internal import Synchronization

/// The panel's sign-in sessions, in memory: a restart signs everyone out,
/// which a development sign-in can afford (no passwords are lost).
///
/// A session is created only by the sign-in page (its form needs a CSRF
/// token) and is replaced by a new id when someone signs in (an id planted
/// before sign-in is worth nothing after it). Sessions not yet signed in are
/// a pool of their own, at most `maxAnonymous`: a flood of sign-in pages
/// pushes out only other unused sign-in pages, never someone signed in.
///
/// Thread-safe: one mutex over the table; nothing under it waits, and the
/// streams' `end` closures run after it is released.
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
        fileprivate var streams: [LiveStream] = []
        fileprivate var lastUsed: ContinuousClock.Instant
    }

    /// An open live history page: `end` finishes its response.
    fileprivate struct LiveStream: Sendable {
        let id: UInt64
        let end: @Sendable () -> Void
    }

    private struct Table {
        var sessions: [String: Session] = [:]
        var anonymous = 0
        var liveStreams = 0
        var nextStream: UInt64 = 0
    }

    private let table = Mutex(Table())
    private let idleTimeout: Duration
    private let maxSessions: Int
    private let maxAnonymous: Int
    private let maxLiveStreams: Int
    private let maxLiveStreamsPerSession: Int

    init(idleTimeout: Duration, maxSessions: Int, maxLiveStreams: Int, maxLiveStreamsPerSession: Int) {
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        // Sign-in pages waiting to be used: a tenth of the sessions, at least 100.
        self.maxAnonymous = max(100, maxSessions / 10)
        self.maxLiveStreams = maxLiveStreams
        self.maxLiveStreamsPerSession = maxLiveStreamsPerSession
    }

    /// The live session of this id, marked used; nil if unknown or idle too long.
    func find(_ id: String?) -> Session? {
        guard let id, id.utf8.count == 64 else { return nil }
        let now = ContinuousClock.now
        var ended: [LiveStream] = []
        let found = table.withLock { table -> Session? in
            guard var session = table.sessions[id] else { return nil }
            guard now - session.lastUsed < idleTimeout else {
                ended = remove(id, from: &table)
                return nil
            }
            session.lastUsed = now
            table.sessions[id] = session
            return session
        }
        for stream in ended { stream.end() }
        return found
    }

    /// Whether `id` is still signed in as `account`, marking it used (an open
    /// live page is use).
    func holds(_ id: String, account: String) -> Bool {
        find(id)?.accountID == account
    }

    /// A new session, signed in as `accountID` (or not yet); `replacing` is forgotten.
    func create(accountID: String? = nil, replacing old: String? = nil) -> Session {
        let now = ContinuousClock.now
        let session = Session(id: Self.token(), csrfToken: Self.token(), accountID: accountID, lastUsed: now)
        var ended: [LiveStream] = []
        table.withLock { table in
            if let old { ended += remove(old, from: &table) }
            let anonymous = accountID == nil
            let full = anonymous ? table.anonymous >= maxAnonymous : table.sessions.count >= maxSessions
            if full {
                // The least recently used of the same pool goes (idle ones
                // first by that order): a flood costs old sessions of its
                // own kind, never memory.
                let pool = table.sessions.values.filter { ($0.accountID == nil) == anonymous }
                if let oldest = pool.min(by: { $0.lastUsed < $1.lastUsed }) {
                    ended += remove(oldest.id, from: &table)
                }
            }
            table.sessions[session.id] = session
            if anonymous { table.anonymous += 1 }
        }
        for stream in ended { stream.end() }
        return session
    }

    /// Signs out: the session and its live pages end.
    func forget(_ id: String) {
        let ended = table.withLock { remove(id, from: &$0) }
        for stream in ended { stream.end() }
    }

    private func remove(_ id: String, from table: inout Table) -> [LiveStream] {
        guard let session = table.sessions.removeValue(forKey: id) else { return [] }
        if session.accountID == nil { table.anonymous -= 1 }
        table.liveStreams -= session.streams.count
        return session.streams
    }

    func update(_ id: String, _ change: (inout Session) -> Void) {
        table.withLock { table in
            guard var session = table.sessions[id] else { return }
            let wasAnonymous = session.accountID == nil
            change(&session)
            precondition(wasAnonymous == (session.accountID == nil), "sign-in makes a new session")
            table.sessions[id] = session
        }
    }

    /// Takes a live-stream place for the session; nil when the panel has
    /// none free. A session at its own limit gives up its oldest stream
    /// (`end` is called): the page just opened is the one being looked at,
    /// the oldest most likely a tab left behind or already closed.
    func startLiveStream(_ id: String, end: @escaping @Sendable () -> Void) -> UInt64? {
        var evicted: LiveStream?
        let started = table.withLock { table -> UInt64? in
            guard var session = table.sessions[id] else { return nil }
            if session.streams.count >= maxLiveStreamsPerSession {
                evicted = session.streams.removeFirst()
                table.liveStreams -= 1
            }
            guard table.liveStreams < maxLiveStreams else {
                table.sessions[id] = session
                return nil
            }
            table.nextStream += 1
            session.streams.append(LiveStream(id: table.nextStream, end: end))
            table.sessions[id] = session
            table.liveStreams += 1
            return table.nextStream
        }
        evicted?.end()
        return started
    }

    func endLiveStream(_ id: String, stream: UInt64) {
        table.withLock { table in
            guard var session = table.sessions[id], let index = session.streams.firstIndex(where: { $0.id == stream })
            else { return }
            session.streams.remove(at: index)
            table.sessions[id] = session
            table.liveStreams -= 1
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
