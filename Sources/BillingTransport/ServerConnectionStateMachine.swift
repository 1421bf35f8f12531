internal import BillingRPC

/// The state of one server connection's ttrpc streams, as a value: which
/// streams run, which stream ids may still open one, whether the connection
/// drains and when it closes. `ServerConnectionHandler` does the I/O each
/// decision asks for; the rules live here and are tested without a channel
/// (as grpc-swift-nio-transport keeps a connection's rules in
/// `ServerConnectionManagementHandler.StateMachine`).
///
/// `Stream` is what the handler keeps per running stream (its task and
/// deadline timer); the machine only stores and hands it back.
struct ServerConnectionStateMachine<Stream> {
    enum State: Equatable {
        /// Taking new streams.
        case active
        /// GOAWAY sent: no new streams; closes once the running ones end.
        case draining
        /// Closed, or ended by shutdown: nothing runs any more.
        case closed
    }

    private(set) var state = State.active
    private(set) var streams: [UInt32: Stream] = [:]
    /// The highest stream id a Request used; ids only grow (ttrpc).
    private(set) var lastStreamID: UInt32 = 0
    let maxConcurrentStreams: Int

    init(maxConcurrentStreams: Int) {
        self.maxConcurrentStreams = maxConcurrentStreams
    }

    var activeStreamCount: Int { streams.count }

    func isRunning(_ id: UInt32) -> Bool { streams[id] != nil }

    // MARK: Opening

    enum Admission: Equatable {
        case open
        case refuse(RPCError)
    }

    /// A Request frame arrived on `id`. An odd id above every earlier one is
    /// used up whatever the answer, so it can never open a stream later.
    mutating func requestReceived(on id: UInt32) -> Admission {
        guard id % 2 == 1 else {
            return .refuse(RPCError(.invalidArgument, "stream id \(id) is even; clients use odd ids"))
        }
        guard id > lastStreamID else {
            return .refuse(
                RPCError(.invalidArgument, "stream id \(id) is not above \(lastStreamID); ids cannot be reused")
            )
        }
        lastStreamID = id
        guard state == .active else {
            return .refuse(RPCError(.unavailable, "server is shutting down; retry on a new connection"))
        }
        guard streams.count < maxConcurrentStreams else {
            return .refuse(
                RPCError(.resourceExhausted, "more than \(maxConcurrentStreams) concurrent streams on one connection")
            )
        }
        return .open
    }

    /// The admitted stream `id` runs (its request was decoded and routed).
    mutating func streamStarted(_ id: UInt32, _ stream: Stream) {
        precondition(id == lastStreamID && streams[id] == nil, "stream \(id) was not just admitted")
        streams[id] = stream
    }

    /// How long a call may run: the request's `timeout_nano`, else the
    /// server's default for unary calls; a stream has none unless asked.
    static func timeout(
        requestTimeoutNano: Int64,
        isUnary: Bool,
        defaultUnary: Duration?
    ) -> Result<Duration?, RPCError> {
        guard requestTimeoutNano >= 0 else { return .failure(RPCError(.invalidArgument, "timeout_nano is negative")) }
        if requestTimeoutNano > 0 { return .success(.nanoseconds(requestTimeoutNano)) }
        return .success(isUnary ? defaultUnary : nil)
    }

    // MARK: Ending

    /// Stream `id` ends (its result, a Cancel or Data frame from the client,
    /// its deadline, a slow reader). The stream if it was still running, to
    /// cancel and answer; nil when it had already ended: do nothing more.
    mutating func streamEnded(_ id: UInt32) -> Stream? {
        streams.removeValue(forKey: id)
    }

    /// After a stream's last frame is written: whether the connection closes
    /// now (draining, and that was the last stream).
    var closesAfterFinalFrame: Bool { state == .draining && streams.isEmpty }

    /// An unknown frame type on `id` (a later ttrpc version's): answered
    /// only on an odd id that never opened a stream, so no caller waits in
    /// vain and a running stream is not disturbed.
    func answersUnknownFrame(on id: UInt32) -> Bool {
        streams[id] == nil && id % 2 == 1 && id > lastStreamID
    }

    // MARK: Draining and closing

    struct GoAway: Equatable {
        /// The last stream id the server took: a request above it was not processed.
        let lastStreamID: UInt32
        /// No stream runs: close right after the GOAWAY.
        let closeNow: Bool
    }

    /// Stop taking streams: the GOAWAY to send, or nil when already draining
    /// or closed.
    mutating func beginDraining() -> GoAway? {
        guard state == .active else { return nil }
        state = .draining
        return GoAway(lastStreamID: lastStreamID, closeNow: streams.isEmpty)
    }

    /// The idle timer fired: drain (GOAWAY first, so a request crossing the
    /// close on the wire is known to be unprocessed) only when nothing runs.
    mutating func idleTimeoutFired() -> GoAway? {
        guard streams.isEmpty else { return nil }
        return beginDraining()
    }

    /// The grace period is over, or the connection is gone: every stream
    /// still running, removed, to cancel (and answer, if the connection is
    /// still there).
    mutating func close() -> [(id: UInt32, stream: Stream)] {
        state = .closed
        let running = streams.sorted { $0.key < $1.key }.map { (id: $0.key, stream: $0.value) }
        streams.removeAll()
        return running
    }
}
