/// How a message becomes bytes and back. The RPC core knows no message
/// format: the API module supplies protobuf's (`ProtoSerializer`,
/// `ProtoDeserializer`), as grpc-swift's core leaves its codecs to others.
public protocol MessageSerializer<Message>: Sendable {
    associatedtype Message
    func serialize(_ message: Message) throws -> [UInt8]
}

public protocol MessageDeserializer<Message>: Sendable {
    associatedtype Message
    /// Decodes `bytes`, refusing a message over `maxBytes`.
    func deserialize(_ bytes: [UInt8], maxBytes: Int) throws -> Message
}

/// The errors of coding a call's messages, mapped once to the status each
/// side reports.
enum MessageCoding {
    static func name<Message>(_ type: Message.Type) -> String { String(describing: type) }

    static func encode<Message>(
        _ message: Message,
        with serializer: some MessageSerializer<Message>,
        failing code: StatusCode
    ) throws(RPCError) -> [UInt8] {
        do {
            return try serializer.serialize(message)
        } catch {
            throw RPCError(code, "could not encode \(name(Message.self)): \(error)", cause: error)
        }
    }

    static func decode<Message>(
        _ bytes: [UInt8],
        maxBytes: Int,
        with deserializer: some MessageDeserializer<Message>,
        failing code: StatusCode,
        _ what: String
    ) throws(RPCError) -> Message {
        do {
            return try deserializer.deserialize(bytes, maxBytes: maxBytes)
        } catch {
            throw RPCError(code, "\(what) \(name(Message.self)): \(error)", cause: error)
        }
    }
}
