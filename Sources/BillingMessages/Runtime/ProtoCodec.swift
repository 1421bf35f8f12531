internal import CProtobufC

/// The two calls into protobuf-c, with the checks that surround them.
enum ProtoCodec {
    static func encode<M: CBackedMessage>(_ value: M) throws -> [UInt8] {
        let arena = CArena()
        let message = try arena.message(value)
        return try withExtendedLifetime(arena) {
            let base = UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
            let size = protobuf_c_message_get_packed_size(base)
            // The same ceiling the decoder applies: we never send what we would refuse.
            let limit = DecodeLimits.default.maxMessageBytes
            guard size <= limit else { throw MessageError.tooLarge(bytes: size, limit: limit) }
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                initialized = size == 0 ? 0 : protobuf_c_message_pack(base, buffer.baseAddress!)
                precondition(initialized == size, "protobuf-c packed a size other than it measured")
            }
        }
    }

    static func decode<M: CBackedMessage>(
        _ type: M.Type,
        from bytes: some Collection<UInt8>,
        limits: DecodeLimits
    ) throws -> M {
        // The size is checked before anything is copied or parsed.
        guard bytes.count <= limits.maxMessageBytes else {
            throw MessageError.tooLarge(bytes: bytes.count, limit: limits.maxMessageBytes)
        }
        if let result = try bytes.withContiguousStorageIfAvailable({ try decode(type, buffer: $0, limits: limits) }) {
            return result
        }
        return try Array(bytes).withUnsafeBufferPointer { try decode(type, buffer: $0, limits: limits) }
    }

    private static func decode<M: CBackedMessage>(
        _ type: M.Type,
        buffer: UnsafeBufferPointer<UInt8>,
        limits: DecodeLimits
    ) throws -> M {
        try WireValidator(limits: limits).validate(buffer, descriptor: M.cDescriptor)
        // protobuf-c wants a valid pointer even for an empty message.
        var empty: UInt8 = 0
        return try withUnsafePointer(to: &empty) { emptyPointer in
            let data = buffer.baseAddress ?? emptyPointer
            guard let unpacked = protobuf_c_message_unpack(M.cDescriptor, nil, buffer.count, data) else {
                throw MessageError.malformed("rejected by protobuf-c")
            }
            defer { protobuf_c_message_free_unpacked(unpacked, nil) }
            let typed = UnsafeRawPointer(unpacked).assumingMemoryBound(to: M.CMessage.self)
            return try M(c: typed)
        }
    }
}
