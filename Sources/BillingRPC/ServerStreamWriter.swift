public import BillingMessages

/// Where a transport takes the encoded messages of a server stream.
/// `write` suspends while the peer is not reading (backpressure) and throws
/// once the stream is gone (peer cancelled, connection closed).
public protocol RawStreamSink: Sendable {
    func write(_ message: [UInt8]) async throws
}

/// A handler's typed view of its server stream.
public struct ServerStreamWriter<Message: ProtoMessage>: Sendable {
    let sink: any RawStreamSink

    public init(sink: any RawStreamSink) {
        self.sink = sink
    }

    public func write(_ message: Message) async throws {
        let bytes: [UInt8]
        do {
            bytes = try message.serializedBytes()
        } catch {
            throw RPCError(.internal, "could not encode \(Message.protoName): \(error)")
        }
        try await sink.write(bytes)
    }
}
