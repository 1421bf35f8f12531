public import NIOCore

/// Fired inbound once the handshake completes, with the verified peer.
public struct TLSHandshakeCompleted: Sendable, Hashable {
    public let peer: TLSPeer?
    /// E.g. "TLSv1.3".
    public let version: String
}

/// TLS over OpenSSL for one channel: ciphertext below, plaintext above.
///
/// All methods are called on the channel's event loop. The handler owns its
/// `TLSConnection`; every buffer it receives from below is handed to OpenSSL
/// and released, every buffer it sends below is one it allocated.
///
/// Writes made before the handshake completes are held (in order, with their
/// promises) and written once it does. A failed handshake, a handshake that
/// runs past `TLSConfiguration.handshakeTimeout`, or a TLS error later fires
/// `errorCaught(TLSError)` and closes the channel. `close` sends close_notify
/// first when the session is up.
public final class OpenSSLHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case handshaking
        case active
        case closing
        case closed
    }

    private let connection: TLSConnection
    private let handshakeTimeout: Duration
    private var state = State.idle
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    /// Plaintext written since the last flush, handed to OpenSSL at the
    /// flush in one piece: many small messages (a stream's events, a batch of
    /// responses) become a few full TLS records instead of one record each,
    /// which costs both ends a record's encryption and framing per message.
    private var unflushedPlaintext: ByteBuffer?
    /// Promises of plaintext written since the last flush.
    private var unflushedPromises: [EventLoopPromise<Void>] = []
    private var timeout: Scheduled<Void>?

    public init(context: TLSContext) throws(TLSError) {
        connection = try TLSConnection(context: context)
        handshakeTimeout = context.configuration.handshakeTimeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshake(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        state = .handshaking
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: TimeAmount(handshakeTimeout)) {
            let (handler, context) = loopBound.value
            guard case .handshaking = handler.state else { return }
            handler.fail(context: context, TLSError.handshakeTimeout)
        }
        advanceHandshake(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        switch connection.handshake() {
        case .inProgress:
            flushNetwork(context: context)
        case .failed(let error):
            flushNetwork(context: context)  // the alert tells the peer why
            fail(context: context, error)
        case .complete:
            state = .active
            timeout?.cancel()
            timeout = nil
            flushNetwork(context: context)
            context.fireUserInboundEventTriggered(
                TLSHandshakeCompleted(peer: connection.peer(), version: connection.negotiatedVersion)
            )
            let held = pendingWrites
            pendingWrites = []
            for (buffer, promise) in held {
                write(context: context, data: wrapOutboundOut(buffer), promise: promise)
            }
            if !held.isEmpty { flush(context: context) }
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch state {
        case .closed:
            return
        case .idle:
            startHandshake(context: context)
        default:
            break
        }
        connection.receive(&buffer)
        if case .handshaking = state {
            advanceHandshake(context: context)
        }
        guard case .active = state else { return }
        readPlaintext(context: context)
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        while true {
            var plaintext = context.channel.allocator.buffer(capacity: 16_384)
            switch connection.read(into: &plaintext) {
            case .data:
                context.fireChannelRead(wrapInboundOut(plaintext))
            case .wantMore:
                flushNetwork(context: context)
                return
            case .closed:
                // close_notify from the peer: answer it and close.
                close(context: context, mode: .all, promise: nil)
                return
            case .failed(let error):
                fail(context: context, error)
                return
            }
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushNetwork(context: context)
        context.fireChannelReadComplete()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            pendingWrites.append((buffer, promise))
        case .closing, .closed:
            promise?.fail(TLSError.closed)
        case .active:
            if unflushedPlaintext == nil {
                unflushedPlaintext = buffer
            } else {
                unflushedPlaintext!.writeImmutableBuffer(buffer)
            }
            if let promise { unflushedPromises.append(promise) }
        }
    }

    /// Hands the plaintext written since the last flush to OpenSSL; false
    /// (and the connection failing) when it refuses it.
    private func encryptUnflushed(context: ChannelHandlerContext) -> Bool {
        guard let plaintext = unflushedPlaintext else { return true }
        unflushedPlaintext = nil
        do {
            try connection.write(plaintext)
            return true
        } catch {
            let promises = unflushedPromises
            unflushedPromises = []
            for promise in promises { promise.fail(error) }
            fail(context: context, error)
            return false
        }
    }

    public func flush(context: ChannelHandlerContext) {
        guard case .active = state else { return }
        flushNetwork(context: context)
    }

    /// Writes whatever OpenSSL produced, completing the plaintext promises
    /// that it carries.
    private func flushNetwork(context: ChannelHandlerContext) {
        guard encryptUnflushed(context: context) else { return }
        let promises = unflushedPromises
        unflushedPromises = []
        guard let output = connection.drainOutput(allocator: context.channel.allocator) else {
            promises.forEach { $0.succeed() }
            return
        }
        if promises.isEmpty {
            context.writeAndFlush(wrapOutboundOut(output), promise: nil)
        } else {
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(output), promise: promise)
            for waiting in promises { promise.futureResult.cascade(to: waiting) }
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch state {
        case .active:
            guard encryptUnflushed(context: context) else {
                context.close(mode: mode, promise: promise)
                return
            }
            state = .closing
            connection.shutdown()
            flushNetwork(context: context)
            context.close(mode: .all, promise: promise)
        case .closing, .closed:
            context.close(mode: mode, promise: promise)
        case .idle, .handshaking:
            state = .closing
            context.close(mode: mode, promise: promise)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let wasHandshaking: Bool
        if case .handshaking = state { wasHandshaking = true } else { wasHandshaking = false }
        state = .closed
        timeout?.cancel()
        timeout = nil
        let held = pendingWrites
        pendingWrites = []
        for (_, promise) in held { promise?.fail(TLSError.closed) }
        let unflushed = unflushedPromises
        unflushedPromises = []
        unflushedPlaintext = nil
        for promise in unflushed { promise.fail(TLSError.closed) }
        if wasHandshaking {
            context.fireErrorCaught(TLSError.closedDuringHandshake)
        }
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        if case .closed = state { return }
        // Closing before the error goes on: a handler that closes on it
        // must not find the session still active.
        state = .closing
        timeout?.cancel()
        timeout = nil
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
