internal import CBillingProto
internal import CProtobufC

/// Walks protobuf wire bytes guided by a protoc-c descriptor before protobuf-c
/// parses them, and refuses what protobuf-c would accept silently or could not
/// bound:
/// - nesting deeper than `DecodeLimits.maxDepth` (protobuf-c recurses without a limit);
/// - string fields that are not UTF-8 or hold U+0000 (protobuf-c copies them into
///   NUL-terminated buffers, which would cut them short without a word);
/// - varints over 10 bytes, lengths past the end, groups, field number 0, and
///   wire types that do not fit the declared field.
/// protobuf-c then checks the structure again as it parses: two independent
/// checks of the same property, as the encoder and decoder of a frame do.
struct WireValidator {
    let limits: DecodeLimits

    func validate(_ bytes: UnsafeBufferPointer<UInt8>, descriptor: UnsafePointer<ProtobufCMessageDescriptor>) throws {
        try walk(bytes, descriptor: descriptor, depth: 1)
    }

    private func walk(
        _ bytes: UnsafeBufferPointer<UInt8>,
        descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
        depth: Int
    ) throws {
        guard depth <= limits.maxDepth else { throw MessageError.tooDeep(limit: limits.maxDepth) }
        var reader = Reader(bytes: bytes)
        while !reader.atEnd {
            let key = try reader.varint()
            let number = key >> 3
            guard number >= 1, number <= 536_870_911 else {
                throw MessageError.malformed("field number \(number) is out of range")
            }
            let wireType = UInt8(key & 7)
            let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(number))
            if let field {
                try checkWireType(wireType, field: field)
            }
            switch wireType {
            case 0:
                _ = try reader.varint()
            case 1:
                try reader.skip(8)
            case 5:
                try reader.skip(4)
            case 2:
                let length = try reader.varint()
                let body = try reader.take(length)
                guard let field else { continue }  // unknown field: kept opaque by protobuf-c
                if field.pointee.type == PROTOBUF_C_TYPE_STRING {
                    try checkString(body, field: field)
                } else if field.pointee.type == PROTOBUF_C_TYPE_MESSAGE {
                    let nested = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                    try walk(body, descriptor: nested, depth: depth + 1)
                }
            case 3, 4:
                throw MessageError.malformed("groups are not supported")
            default:
                throw MessageError.malformed("wire type \(wireType) does not exist")
            }
        }
    }

    private func checkWireType(_ wireType: UInt8, field: UnsafePointer<ProtobufCFieldDescriptor>) throws {
        let type = field.pointee.type
        let expected: UInt8
        switch type {
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_TYPE_MESSAGE:
            expected = 2
        case PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_DOUBLE:
            expected = 1
        case PROTOBUF_C_TYPE_FIXED32, PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_FLOAT:
            expected = 5
        default:
            expected = 0
        }
        // A repeated scalar may arrive packed in one length-delimited field.
        let packedAllowed = field.pointee.label == PROTOBUF_C_LABEL_REPEATED && expected != 2
        guard wireType == expected || (packedAllowed && wireType == 2) else {
            throw MessageError.malformed("field \(String(cString: field.pointee.name)) has wire type \(wireType)")
        }
    }

    private func checkString(_ body: UnsafeBufferPointer<UInt8>, field: UnsafePointer<ProtobufCFieldDescriptor>) throws
    {
        let name = String(cString: field.pointee.name)
        if body.contains(0) || String(validating: body, as: UTF8.self) == nil {
            throw MessageError.invalidString(field: name)
        }
    }
}

/// A cursor over wire bytes; every read is bounds-checked.
private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        // At most 10 bytes encode 64 bits; the 10th may carry only the top bit.
        for index in 0..<10 {
            guard offset < bytes.count else { throw MessageError.malformed("varint cut off") }
            let byte = bytes[offset]
            offset += 1
            if index == 9 && byte > 1 { throw MessageError.malformed("varint over 64 bits") }
            result |= UInt64(byte & 0x7f) << (7 * UInt64(index))
            if byte & 0x80 == 0 { return result }
        }
        throw MessageError.malformed("varint over 10 bytes")
    }

    mutating func skip(_ count: Int) throws {
        _ = try take(UInt64(count))
    }

    mutating func take(_ count: UInt64) throws -> UnsafeBufferPointer<UInt8> {
        let remaining = bytes.count - offset
        guard count <= UInt64(remaining) else { throw MessageError.malformed("length past the end") }
        let start = offset
        offset += Int(count)
        return UnsafeBufferPointer(rebasing: bytes[start..<offset])
    }
}
