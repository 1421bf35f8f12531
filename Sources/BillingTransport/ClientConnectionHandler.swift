internal import BillingMessages
internal import BillingRPC
internal import BillingTLS
internal import BillingWire
internal import NIOCore

/// One client connection's streams: assigns odd stream ids, sends Requests,
/// and delivers Responses and Data frames to the calls waiting for them.
///
/// Backpressure: when a stream's consumer has `maxBufferedStreamMessages`
/// waiting, the handler stops reading the socket (TCP then slows the
/// server), and reads again once it has taken half of them. A consumer that
/// stays stalled for `stallTimeout` has its stream ended RESOURCE_EXHAUSTED so
/// the connection's other calls go on; it resumes from its cursor.
///
/// All methods run on the channel's event loop; callers reach it through a
/// `NIOLoopBound`.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    private enum Waiter {
        case unary(CheckedContinuation<[UInt8], any Error>)
        case stream(AsyncThrowingStream<[UInt8], any Error>.Continuation, buffered: Int)
    }

    private var context: ChannelHandlerContext?
    private var nextStreamID: UInt32 = 1
    private var waiters: [UInt32: Waiter] = [:]
    private let ready: EventLoopPromise<Void>
    private var readyDone = false
    /// The server sent GOAWAY: open no new streams on this connection.
    private(set) var goingAway = false
    private(set) var closed = false
    private let maxBufferedStreamMessages: Int
    private static let inFlightMargin = 32_768
    private let stallTimeout: TimeAmount
    /// Reading is paused for a full stream buffer.
    private var paused = false
    /// NIO asked to read while paused; forwarded on resume.
    private var readPending = false
    private var stallTimer: Scheduled<Void>?

    init(ready: EventLoopPromise<Void>, maxBufferedStreamMessages: Int, stallTimeout: TimeAmount = .seconds(10)) {
        self.ready = ready
        self.maxBufferedStreamMessages = maxBufferedStreamMessages
        self.stallTimeout = stallTimeout
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func pause(context: ChannelHandlerContext) {
        guard !paused else { return }
        paused = true
        stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: stallTimeout) {
            self.endStalledStreams()
        }
    }

    private func resumeIfDrained() {
        guard paused, let context else { return }
        let limit = maxBufferedStreamMessages / 2
        for case .stream(_, let buffered) in waiters.values where buffered > limit { return }
        paused = false
        stallTimer?.cancel()
        stallTimer = nil
        if readPending {
            readPending = false
            context.read()
        }
    }

    private func endStalledStreams() {
        let stalled = waiters.compactMap { id, waiter -> UInt32? in
            if case .stream(_, let buffered) = waiter, buffered >= maxBufferedStreamMessages { return id }
            return nil
        }
        for id in stalled {
            cancel(
                id,
                RPCError(
                    .resourceExhausted,
                    "stream consumer did not take a message for too long; resume from the last one seen"
                )
            )
        }
        resumeIfDrained()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    var readyFuture: EventLoopFuture<Void> { ready.futureResult }

    var isUsable: Bool { !closed && !goingAway && nextStreamID < UInt32.max - 2 }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted, !readyDone {
            readyDone = true
            ready.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failReady(error)
        failAll(RPCError(.unavailable, "connection failed: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        failReady(RPCError(.unavailable, "connection closed before the TLS handshake finished"))
        failAll(RPCError(.unavailable, "connection closed"))
        context.fireChannelInactive()
    }

    private func failReady(_ error: any Error) {
        guard !readyDone else { return }
        readyDone = true
        ready.fail(error)
    }

    private func failAll(_ error: RPCError) {
        stallTimer?.cancel()
        stallTimer = nil
        let all = waiters
        waiters.removeAll()
        for waiter in all.values {
            switch waiter {
            case .unary(let continuation): continuation.resume(throwing: error)
            case .stream(let continuation, _): continuation.finish(throwing: error)
            }
        }
    }

    // MARK: Calls

    /// Sends a Request frame; returns its stream id.
    func start(_ method: MethodDescriptor, request: [UInt8], options: CallOptions, waiter: WaiterKind) throws -> UInt32
    {
        guard let context, isUsable else { throw NotProcessed() }
        var envelope = BillingV1.Request()
        envelope.service = method.service
        envelope.method = method.method
        envelope.payload = request
        if let timeout = options.timeout {
            let (seconds, attoseconds) = timeout.components
            envelope.timeoutNano = max(1, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        envelope.metadata = options.metadata.map { entry in
            var pair = BillingV1.KeyValue()
            pair.key = entry.key
            pair.value = entry.value
            return pair
        }
        let bytes: [UInt8]
        do {
            bytes = try envelope.serializedBytes()
        } catch {
            throw RPCError(.invalidArgument, "could not encode the request: \(error)")
        }
        let id = nextStreamID
        nextStreamID += 2
        switch waiter {
        case .unary(let continuation): waiters[id] = .unary(continuation)
        case .stream(let continuation): waiters[id] = .stream(continuation, buffered: 0)
        }
        // Unary: flags 0. Server streaming: `remote closed` (we send no data).
        let flags: FrameFlags = method.kind == .unary ? [] : .remoteClosed
        context.write(
            wrapOutboundOut(
                Frame(
                    streamID: id,
                    type: .request,
                    flags: flags,
                    payload: context.channel.allocator.buffer(bytes: bytes)
                )
            ),
            promise: nil
        )
        scheduleFlush(context)
        return id
    }

    private var flushScheduled = false

    /// One flush per event-loop tick for all requests started in it.
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    enum WaiterKind {
        case unary(CheckedContinuation<[UInt8], any Error>)
        case stream(AsyncThrowingStream<[UInt8], any Error>.Continuation)
    }

    /// The caller gave up (deadline, task cancelled, stream dropped): forget
    /// the stream and tell the server (cancel extension; a stock server
    /// ignores it).
    func cancel(_ id: UInt32, _ error: RPCError) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        switch waiter {
        case .unary(let continuation): continuation.resume(throwing: error)
        case .stream(let continuation, _): continuation.finish(throwing: error)
        }
        resumeIfDrained()
        guard let context, !closed else { return }
        context.writeAndFlush(
            wrapOutboundOut(Frame(streamID: id, type: .cancel, payload: context.channel.allocator.buffer(capacity: 0))),
            promise: nil
        )
    }

    /// Fails a call the server never processed (it arrived after GOAWAY).
    private func cancelUnsent(_ id: UInt32) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        switch waiter {
        case .unary(let continuation): continuation.resume(throwing: NotProcessed())
        case .stream(let continuation, _): continuation.finish(throwing: NotProcessed())
        }
    }

    /// The consumer took one message off a stream's buffer.
    func consumed(_ id: UInt32) {
        if case .stream(let continuation, let buffered)? = waiters[id] {
            waiters[id] = .stream(continuation, buffered: max(0, buffered - 1))
        }
        resumeIfDrained()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .frame(let frame) = unwrapInboundIn(data) else {
            // The server sent a frame over our limit: nothing can be trusted.
            context.close(promise: nil)
            return
        }
        switch frame.type {
        case .response:
            guard let waiter = waiters.removeValue(forKey: frame.streamID) else { return }
            let result = Self.decodeResponse(frame.payload)
            switch (waiter, result) {
            case (.unary(let continuation), .success(let payload)): continuation.resume(returning: payload)
            case (.unary(let continuation), .failure(let error)): continuation.resume(throwing: error)
            case (.stream(let continuation, _), .success): continuation.finish()
            case (.stream(let continuation, _), .failure(let error)): continuation.finish(throwing: error)
            }
            resumeIfDrained()
        case .data:
            guard case .stream(let continuation, let buffered)? = waiters[frame.streamID] else { return }
            let last = frame.flags.contains(.remoteClosed)
            if !(last && frame.flags.contains(.noData)) {
                // Frames already read when reading paused still arrive: NIO
                // reads up to 4 × 64 KiB per wake-up and the server packs
                // many frames into one TLS record, so up to some 24,000 of
                // the smallest (11-byte) frames. Past that margin something
                // is wrong.
                guard buffered < maxBufferedStreamMessages + Self.inFlightMargin else {
                    cancel(
                        frame.streamID,
                        RPCError(
                            .resourceExhausted,
                            "stream consumer fell more than \(maxBufferedStreamMessages + Self.inFlightMargin) messages behind"
                        )
                    )
                    return
                }
                continuation.yield(Array(frame.payload.readableBytesView))
                waiters[frame.streamID] = .stream(continuation, buffered: buffered + 1)
                if buffered + 1 >= maxBufferedStreamMessages { pause(context: context) }
            }
            if last {
                waiters.removeValue(forKey: frame.streamID)
                continuation.finish()
                resumeIfDrained()
            }
        case .goAway:
            goingAway = true
            // Streams above the server's last accepted id were never processed:
            // they fail as such, and the client retries them on a new connection.
            let lastAccepted =
                frame.payload.getInteger(at: frame.payload.readerIndex, endianness: .big, as: UInt32.self) ?? 0
            for id in waiters.keys where id > lastAccepted {
                cancelUnsent(id)
            }
        default:
            break
        }
    }

    private static func decodeResponse(_ payload: ByteBuffer) -> Result<[UInt8], RPCError> {
        do {
            let response = try BillingV1.Response(serializedBytes: payload.readableBytesView, limits: .default)
            if let status = response.status, status.code != 0 {
                return .failure(RPCError(status: status))
            }
            return .success(response.payload)
        } catch {
            return .failure(RPCError(.internal, "server sent an invalid Response envelope: \(error)", cause: error))
        }
    }
}

/// A call that never reached a server handler (the connection was closing, or
/// the server's GOAWAY named a lower last stream): safe to send again on a new
/// connection, whatever the method.
struct NotProcessed: Error {}
