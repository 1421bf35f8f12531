/// A `ClientTransport` that calls a `MethodRouter` in the same process, with
/// the same encoding, routing and status mapping as the network path but no
/// framing or TLS. For tests of services and for tools embedded in billingd.
///
/// Server-stream messages are buffered without bound here: the in-process
/// caller is trusted. The network transport is where backpressure lives.
public struct InProcessTransport: ClientTransport {
    public let router: MethodRouter
    public let peer: PeerIdentity
    /// The largest request a handler decodes (ttrpc's frame ceiling by default).
    public let maxRequestBytes: Int

    public init(router: MethodRouter, peer: PeerIdentity = .anonymous, maxRequestBytes: Int = 4 << 20) {
        self.router = router
        self.peer = peer
        self.maxRequestBytes = maxRequestBytes
    }

    private func context(_ method: MethodDescriptor, _ options: CallOptions) -> ServerContext {
        ServerContext(
            method: method,
            metadata: options.metadata,
            peer: peer,
            deadline: options.timeout.map { ContinuousClock.now.advanced(by: $0) }
        )
    }

    public func unary(_ method: MethodDescriptor, request: [UInt8], options: CallOptions) async throws -> [UInt8] {
        let registered = try router.route(service: method.service, method: method.method)
        guard case .unary(let body) = registered.body else {
            throw RPCError(.unimplemented, "\(method) is not a unary method")
        }
        do {
            return try await body(request, context(method, options), maxRequestBytes)
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.unknown, "handler failed", cause: error)
        }
    }

    public func serverStream(
        _ method: MethodDescriptor,
        request: [UInt8],
        options: CallOptions
    ) async throws -> any RawMessageStream {
        let registered = try router.route(service: method.service, method: method.method)
        guard case .serverStreaming(let body) = registered.body else {
            throw RPCError(.unimplemented, "\(method) is not a server-streaming method")
        }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let sink = ContinuationSink(continuation: continuation)
        let context = context(method, options)
        let maxRequestBytes = self.maxRequestBytes
        let task = Task {
            do {
                try await body(request, context, maxRequestBytes, sink)
                continuation.finish()
            } catch let error as RPCError {
                continuation.finish(throwing: error)
            } catch is CancellationError {
                continuation.finish(throwing: RPCError(.cancelled, "stream cancelled"))
            } catch {
                continuation.finish(throwing: RPCError(.unknown, "handler failed", cause: error))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return InProcessStream(stream: stream, task: task)
    }
}

private struct ContinuationSink: RawStreamSink {
    let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation

    func write(_ message: [UInt8]) async throws {
        if case .terminated = continuation.yield(message) {
            throw RPCError(.cancelled, "stream cancelled by the caller")
        }
    }

    func offer(_ message: [UInt8]) -> Bool {
        if case .enqueued = continuation.yield(message) { return true }
        return false
    }
}

private final class InProcessStream: RawMessageStream, @unchecked Sendable {
    // The iterator is used by one consumer at a time, as AsyncSequence requires;
    // the class only lets `next()` mutate it through a Sendable reference.
    private var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
    private let task: Task<Void, Never>

    init(stream: AsyncThrowingStream<[UInt8], any Error>, task: Task<Void, Never>) {
        self.iterator = stream.makeAsyncIterator()
        self.task = task
    }

    func next() async throws -> [UInt8]? {
        try await iterator.next()
    }

    func cancel() {
        task.cancel()
    }
}
