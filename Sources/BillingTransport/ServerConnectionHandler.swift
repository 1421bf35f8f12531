internal import BillingMessages
internal import BillingRPC
internal import BillingTLS
internal import BillingWire
internal import NIOCore
internal import Synchronization

/// One server connection's ttrpc streams: routes Requests to handlers, runs
/// each in its own task, writes their Responses and Data frames.
///
/// All methods run on the channel's event loop; handler tasks reach back to it
/// through `loopBound` only. Which streams run, which ids may open one and
/// when the connection drains or closes is `ServerConnectionStateMachine`'s
/// to decide; this handler does the I/O. A stream runs from its Request
/// until its final frame is written (or it is cancelled), so every limit and
/// shutdown step sees exactly the streams still running.
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = Frame

    private struct ActiveStream {
        let task: Task<Void, Never>
        /// Fires DEADLINE_EXCEEDED; cancelled when the stream ends first.
        let deadline: Scheduled<Void>?
        let method: MethodDescriptor
        let started: ContinuousClock.Instant

        /// Stops the handler and its deadline timer.
        func cancel() {
            task.cancel()
            deadline?.cancel()
        }
    }

    private let router: MethodRouter
    private let limits: ServerLimits
    private var context: ChannelHandlerContext?
    private var peer = PeerIdentity.anonymous
    private var state: ServerConnectionStateMachine<ActiveStream>
    private var flushScheduled = false

    private let admission: ConnectionAdmission
    private let observer: (any ServerCallObserver)?

    init(
        router: MethodRouter,
        limits: ServerLimits,
        admission: ConnectionAdmission,
        observer: (any ServerCallObserver)? = nil
    ) {
        self.router = router
        self.limits = limits
        self.admission = admission
        self.observer = observer
        self.state = ServerConnectionStateMachine(maxConcurrentStreams: limits.maxConcurrentStreams)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var activeStreamCount: Int { state.activeStreamCount }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? TLSHandshakeCompleted {
            peer = handshake.peer.map { PeerIdentity(commonName: $0.commonName, uris: $0.uris) } ?? .anonymous
            guard admission.admit(context.channel, peer: peer) else {
                // Over a connection limit for this peer or its class: no room.
                context.close(promise: nil)
                return
            }
            try? context.pipeline.syncOperations.addHandler(
                IdleStateHandler(allTimeout: TimeAmount(limits.idleTimeout)),
                position: .before(self)
            )
        } else if event is IdleStateHandler.IdleStateEvent, let goAway = state.idleTimeoutFired() {
            send(goAway)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .oversized(let header, let limit):
            // On a running stream this ends it: its answer is this error, once.
            end(
                header.streamID,
                RPCError(.resourceExhausted, "frame of \(header.length) bytes is over the limit of \(limit)")
            )
        case .frame(let frame):
            switch frame.type {
            case .request:
                openStream(frame)
            case .cancel:
                cancelStream(frame.streamID)
            case .data:
                // Every method here is unary or server-streaming: a client
                // never sends Data. The stream (if any) ends with the error.
                end(frame.streamID, RPCError(.invalidArgument, "Data frame on a stream that takes no client data"))
            case .response:
                end(frame.streamID, RPCError(.invalidArgument, "a client sends no Response frames"))
            default:
                // ttrpc: ignore unknown types (a later version's); answer only
                // on a stream that is not running, so nothing waits in vain.
                if state.answersUnknownFrame(on: frame.streamID) {
                    refuseCall(frame.streamID, RPCError(.unimplemented, "frame \(frame.type) is not supported"))
                }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for running in state.close() {
            running.stream.cancel()
            report(running.stream, .cancelled)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS and framing errors end the connection; the handler tasks are
        // cancelled in channelInactive.
        context.close(promise: nil)
    }

    // MARK: Streams

    private func openStream(_ frame: Frame) {
        let id = frame.streamID
        let started = ContinuousClock.now
        if case .refuse(let error) = state.requestReceived(on: id) { return refuseCall(id, error) }
        let request: BillingV1.Request
        do {
            request = try BillingV1.Request(
                serializedBytes: frame.payload.readableBytesView,
                limits: DecodeLimits(maxMessageBytes: limits.maxFrameBytes)
            )
        } catch {
            return refuseCall(id, RPCError(.invalidArgument, "Request envelope is not valid protobuf: \(error)"))
        }
        let metadata = Metadata(request.metadata.map { (key: $0.key, value: $0.value) })
        guard metadata.byteCount <= limits.maxMetadataBytes else {
            return refuseCall(
                id,
                RPCError(
                    .resourceExhausted,
                    "metadata of \(metadata.byteCount) bytes is over the limit of \(limits.maxMetadataBytes)"
                )
            )
        }
        let method: RegisteredMethod
        do {
            method = try router.route(service: request.service, method: request.method)
        } catch let error as RPCError {
            return refuseCall(id, error)
        } catch {
            return refuseCall(id, RPCError(.internal, "routing failed"))
        }
        let timeout: Duration?
        switch ServerConnectionStateMachine<ActiveStream>.timeout(
            requestTimeoutNano: request.timeoutNano,
            isUnary: method.descriptor.kind == .unary,
            defaultUnary: limits.defaultUnaryDeadline
        ) {
        case .success(let given): timeout = given
        case .failure(let error): return refuseCall(id, error, method: method.descriptor)
        }
        guard let context else { return }
        let callContext = ServerContext(
            method: method.descriptor,
            metadata: metadata,
            peer: peer,
            deadline: timeout.map { ContinuousClock.now.advanced(by: $0) }
        )
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let payload = request.payload
        let maxRequestBytes = limits.maxFrameBytes

        let task = Self.spawn(
            method.body,
            id: id,
            payload: payload,
            context: callContext,
            maxRequestBytes: maxRequestBytes,
            handler: loopBound,
            eventLoop: eventLoop,
            executor: executor(context.eventLoop)
        )
        // The deadline is a timer on the event loop, not a racing task: one
        // task per call keeps the per-call cost of the server low.
        let deadline = timeout.map { timeout in
            context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                self.deadlineExceeded(id)
            }
        }
        state.streamStarted(
            id,
            ActiveStream(task: task, deadline: deadline, method: method.descriptor, started: started)
        )
    }

    private func deadlineExceeded(_ id: UInt32) {
        guard let stream = state.streamEnded(id) else { return }
        stream.task.cancel()
        report(stream, .deadlineExceeded)
        refuse(id, RPCError(.deadlineExceeded, "deadline exceeded"))
    }

    /// Starts the handler's task; its result comes back on the event loop.
    private static func spawn(
        _ body: RegisteredMethod.Body,
        id: UInt32,
        payload: [UInt8],
        context: ServerContext,
        maxRequestBytes: Int,
        handler: NIOLoopBound<ServerConnectionHandler>,
        eventLoop: any EventLoop,
        executor: EventLoopTaskExecutor
    ) -> Task<Void, Never> {
        switch body {
        case .unary(let unary):
            return Task(executorPreference: executor) {
                let result = await run { try await unary(payload, context, maxRequestBytes) }
                eventLoop.execute { handler.value.finishUnary(id, result) }
            }
        case .serverStreaming(let streaming):
            let sink = StreamSink(handler: handler, eventLoop: eventLoop, streamID: id)
            return Task(executorPreference: executor) {
                let result = await run {
                    try await streaming(payload, context, maxRequestBytes, sink)
                    return []
                }
                // Queued behind the stream's own writes (also queued), so the
                // end frame never overtakes a message.
                eventLoop.execute { handler.value.finishStream(id, result) }
            }
        }
    }

    private var taskExecutor: EventLoopTaskExecutor?

    private func executor(_ eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        if let taskExecutor { return taskExecutor }
        let made = EventLoopTaskExecutor(eventLoop)
        taskExecutor = made
        return made
    }

    /// Runs `body` and maps every error to the status the caller sees.
    /// Errors that are not `RPCError` become UNKNOWN without their text: it
    /// may hold internals.
    private static func run(_ body: @Sendable () async throws -> [UInt8]) async -> Result<[UInt8], RPCError> {
        do {
            return .success(try await body())
        } catch let error as RPCError {
            return .failure(error)
        } catch is CancellationError {
            return .failure(RPCError(.cancelled, "call cancelled"))
        } catch {
            return .failure(RPCError(.unknown, "the handler failed", cause: error))
        }
    }

    private func finishUnary(_ id: UInt32, _ result: Result<[UInt8], RPCError>) {
        guard let stream = state.streamEnded(id), let context else { return }
        stream.deadline?.cancel()
        var result = result
        if case .success(let payload) = result, payload.count + 16 > limits.maxFrameBytes {
            result = .failure(
                RPCError(.resourceExhausted, "response of \(payload.count) bytes is over the frame limit")
            )
        }
        switch result {
        case .success: report(stream, .ok)
        case .failure(let error): report(stream, error.code)
        }
        writeFinal(
            Frame(
                streamID: id,
                type: .response,
                payload: Envelope.response(result, allocator: context.channel.allocator)
            )
        )
    }

    private func finishStream(_ id: UInt32, _ result: Result<[UInt8], RPCError>) {
        guard let stream = state.streamEnded(id), let context else { return }
        stream.deadline?.cancel()
        switch result {
        case .success: report(stream, .ok)
        case .failure(let error): report(stream, error.code)
        }
        switch result {
        case .success:
            // As Go ttrpc ends a server stream: Data[remote closed | no data].
            writeFinal(
                Frame(
                    streamID: id,
                    type: .data,
                    flags: [.remoteClosed, .noData],
                    payload: context.channel.allocator.buffer(capacity: 0)
                )
            )
        case .failure(let error):
            writeFinal(
                Frame(
                    streamID: id,
                    type: .response,
                    payload: Envelope.response(.failure(error), allocator: context.channel.allocator)
                )
            )
        }
    }

    /// Ends a running stream with `error` (or answers one that never ran).
    private func end(_ id: UInt32, _ error: RPCError) {
        if let stream = state.streamEnded(id) {
            stream.cancel()
            report(stream, error.code)
            refuse(id, error)
        } else {
            refuseCall(id, error)
        }
    }

    /// Answers a call that never ran with an error, and reports it.
    private func refuseCall(_ id: UInt32, _ error: RPCError, method: MethodDescriptor? = nil) {
        observer?.callEnded(method, code: error.code, duration: .zero)
        refuse(id, error)
    }

    private func report(_ stream: ActiveStream, _ code: StatusCode) {
        observer?.callEnded(stream.method, code: code, duration: ContinuousClock.now - stream.started)
    }

    /// Answers a stream that never started (or is gone) with an error.
    private func refuse(_ id: UInt32, _ error: RPCError) {
        guard let context else { return }
        writeFinal(
            Frame(
                streamID: id,
                type: .response,
                payload: Envelope.response(.failure(error), allocator: context.channel.allocator)
            )
        )
    }

    /// The last frame of a stream. Flushed with the others of this event-loop
    /// tick: one syscall for many responses when calls finish together.
    private func writeFinal(_ frame: Frame) {
        guard let context else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        if state.closesAfterFinalFrame {
            context.flush()
            context.close(promise: nil)
        } else {
            scheduleFlush()
        }
    }

    /// The client gave up on a stream: no answer is written, and a draining
    /// connection whose last stream that was closes now.
    private func cancelStream(_ id: UInt32) {
        guard let stream = state.streamEnded(id) else { return }
        stream.cancel()
        report(stream, .cancelled)
        if state.closesAfterFinalFrame, let context {
            context.flush()
            context.close(promise: nil)
        }
    }

    /// A message of a server stream. The returned future completes when the
    /// socket has taken it. With `deadline`, it instead fails after
    /// `streamWriteTimeout` (and the stream ends RESOURCE_EXHAUSTED): the peer
    /// stopped reading, and waiting longer only holds memory.
    fileprivate func writeData(_ id: UInt32, _ message: [UInt8], deadline: Bool) throws -> EventLoopFuture<Void> {
        guard state.isRunning(id), let context else { throw RPCError(.cancelled, "stream is closed") }
        guard message.count <= limits.maxFrameBytes else {
            throw RPCError(.resourceExhausted, "stream message of \(message.count) bytes is over the frame limit")
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(
            wrapOutboundOut(
                Frame(streamID: id, type: .data, payload: context.channel.allocator.buffer(bytes: message))
            ),
            promise: written
        )
        scheduleFlush()
        guard deadline else { return written.futureResult }

        let gate = context.eventLoop.makePromise(of: Void.self)
        var settled = false
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(limits.streamWriteTimeout)) {
            guard !settled else { return }
            settled = true
            self.streamTooSlow(id)
            gate.fail(RPCError(.resourceExhausted, "the client did not read the stream for too long"))
        }
        written.futureResult.assumeIsolated().whenComplete { result in
            guard !settled else { return }
            settled = true
            timer.cancel()
            gate.completeWith(result)
        }
        return gate.futureResult
    }

    /// One flush per event-loop tick for all the Data frames written in it:
    /// fewer syscalls when a stream (or several) writes in bursts.
    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    private func streamTooSlow(_ id: UInt32) {
        guard let stream = state.streamEnded(id) else { return }
        stream.cancel()
        report(stream, .resourceExhausted)
        refuse(
            id,
            RPCError(
                .resourceExhausted,
                "the client did not read the stream for too long; resume from the last message seen"
            )
        )
    }

    // MARK: Shutdown

    /// Stop taking new streams; close once the running ones finish.
    func beginDraining() {
        if let goAway = state.beginDraining() { send(goAway) }
    }

    /// GOAWAY with the last stream id taken; the connection closes at once
    /// when nothing runs.
    private func send(_ goAway: ServerConnectionStateMachine<ActiveStream>.GoAway) {
        guard let context else { return }
        var lastID = goAway.lastStreamID.bigEndian
        let payload = withUnsafeBytes(of: &lastID) { context.channel.allocator.buffer(bytes: $0) }
        context.writeAndFlush(wrapOutboundOut(Frame(streamID: 0, type: .goAway, payload: payload)), promise: nil)
        if goAway.closeNow { context.close(promise: nil) }
    }

    /// The grace period is over: end what still runs with UNAVAILABLE.
    func terminate() {
        for running in state.close() {
            running.stream.cancel()
            report(running.stream, .unavailable)
            refuse(running.id, RPCError(.unavailable, "server shut down before the call finished"))
        }
        context?.flush()
        context?.close(promise: nil)
    }
}

/// A server stream's writer: each message becomes a Data frame, in order.
///
/// Up to `windowBytes` of messages may be on their way to the socket while
/// `write` returns at once; past that, `write` waits for the socket. So a fast
/// stream of small messages is not slowed by an event-loop round trip per
/// message, and a slow reader holds at most `windowBytes` plus one message per
/// stream in the server, whatever the size of the messages (a window counted
/// in messages would let 4 MiB frames hold 256 MiB).
private final class StreamSink: RawStreamSink {
    /// 256 KiB: several hundred typical event messages of pipelining, and a
    /// small fraction of what a connection's streams may hold in all.
    static let windowBytes = 256 << 10

    let handler: NIOLoopBound<ServerConnectionHandler>
    let eventLoop: any EventLoop
    let streamID: UInt32
    /// Bytes of messages written without waiting that the socket has not taken yet.
    private let inFlight = Atomic<Int>(0)
    /// The first failure of a write nobody waited for; the next write throws it.
    private let failure = Mutex<(any Error)?>(nil)

    init(handler: NIOLoopBound<ServerConnectionHandler>, eventLoop: any EventLoop, streamID: UInt32) {
        self.handler = handler
        self.eventLoop = eventLoop
        self.streamID = streamID
    }

    func write(_ message: [UInt8]) async throws {
        try Task.checkCancellation()
        if let failure = failure.withLock({ $0 }) { throw failure }
        if offer(message) { return }
        let handler = self.handler
        let id = streamID
        try await eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            do {
                return try handler.value.writeData(id, message, deadline: true)
            } catch {
                return self.eventLoop.makeFailedFuture(error)
            }
        }.get()
        try Task.checkCancellation()
    }

    func offer(_ message: [UInt8]) -> Bool {
        let bytes = message.count
        guard failure.withLock({ $0 }) == nil, inFlight.load(ordering: .relaxed) + bytes <= Self.windowBytes else {
            return false
        }
        inFlight.add(bytes, ordering: .relaxed)
        let handler = self.handler
        let id = streamID
        eventLoop.execute {
            do {
                try handler.value.writeData(id, message, deadline: false).whenComplete { result in
                    self.inFlight.subtract(bytes, ordering: .relaxed)
                    if case .failure(let error) = result { self.record(error) }
                }
            } catch {
                self.inFlight.subtract(bytes, ordering: .relaxed)
                self.record(error)
            }
        }
        return true
    }

    private func record(_ error: any Error) {
        failure.withLock { if $0 == nil { $0 = error } }
    }
}
