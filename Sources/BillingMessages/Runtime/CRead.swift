internal import CProtobufC

/// Copies values out of a struct that protobuf-c unpacked. The struct is freed
/// by `ProtoCodec.decode` right after, so nothing here may keep a pointer.
enum CRead {
    /// protobuf-c does not check UTF-8, so it is checked here; `WireValidator`
    /// has already refused U+0000, which would otherwise cut the string short.
    static func string(_ pointer: UnsafeMutablePointer<CChar>?, field: String) throws -> String {
        guard let pointer else { return "" }
        guard let value = String(validatingCString: pointer) else {
            throw MessageError.invalidString(field: field)
        }
        return value
    }

    static func strings(
        _ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        count: Int,
        field: String
    ) throws -> [String] {
        guard let array, count > 0 else { return [] }
        return try (0..<count).map { try string(array[$0], field: field) }
    }

    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard let base = data.data, data.len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    static func array<C, T>(_ array: UnsafeMutablePointer<C>?, count: Int, _ convert: (C) -> T) -> [T] {
        guard let array, count > 0 else { return [] }
        return UnsafeBufferPointer(start: array, count: count).map(convert)
    }

    static func messages<M: CBackedMessage>(
        _ array: UnsafeMutablePointer<UnsafeMutablePointer<M.CMessage>?>?,
        count: Int
    ) throws -> [M] {
        guard let array, count > 0 else { return [] }
        return try (0..<count).map { index in
            guard let element = array[index] else {
                throw MessageError.malformed("repeated message without a value")
            }
            return try M(c: element)
        }
    }
}
