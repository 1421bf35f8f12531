/// Where a transport takes the encoded messages of a server stream.
/// `write` suspends while the peer is not reading (backpressure) and throws
/// once the stream is gone (peer cancelled, connection closed).
public protocol RawStreamSink: Sendable {
    func write(_ message: [UInt8]) async throws

    /// Queues `message` without waiting when the stream has room for it now;
    /// false when it has not (the peer reads slowly, or the stream is gone),
    /// and then nothing was queued.
    func offer(_ message: [UInt8]) -> Bool
}

/// A handler's typed view of its server stream.
public struct ServerStreamWriter<Message>: Sendable {
    let sink: any RawStreamSink
    let serializer: any MessageSerializer<Message>

    public init(sink: any RawStreamSink, serializer: some MessageSerializer<Message>) {
        self.sink = sink
        self.serializer = serializer
    }

    public func write(_ message: Message) async throws {
        try await sink.write(try MessageCoding.encode(message, with: serializer, failing: .internal))
    }

    /// A message already serialized with this stream's serializer: one
    /// message written to many streams is encoded once.
    public func write(serialized message: [UInt8]) async throws {
        try await sink.write(message)
    }

    /// Queues a message already serialized with this stream's serializer if
    /// the stream has room for it now, without suspending: a writer that
    /// feeds many streams from one task (the event hub) never waits on one
    /// slow reader. False when it had no room; nothing was queued then.
    public func offer(serialized message: [UInt8]) -> Bool {
        sink.offer(message)
    }
}
