internal import CProtobufC

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Owns every allocation made while building one protobuf-c struct tree for
/// packing, and frees them all at once. Used on one thread, for one encode.
///
/// Why an arena: protobuf-c's structs point at strings, arrays and sub-messages
/// that must stay put until `protobuf_c_message_pack` returns. Swift's own
/// storage cannot be pinned across that many nested scopes, so each is copied
/// into malloc'd memory here and released together in `deinit`.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    init() {
        allocations.reserveCapacity(16)
    }

    deinit {
        for pointer in allocations {
            free(pointer)
        }
    }

    private func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        // calloc: protobuf-c expects zeroed structs before `_init`, and a size of 0
        // still yields a unique pointer we can free.
        guard let pointer = calloc(1, max(bytes, 1)) else {
            preconditionFailure("out of memory encoding a message")
        }
        allocations.append(pointer)
        return pointer
    }

    func message<M: CBackedMessage>(_ value: M) throws -> UnsafeMutablePointer<M.CMessage> {
        let raw = allocate(bytes: M.cDescriptor.pointee.sizeof_message)
        protobuf_c_message_init(M.cDescriptor, raw)
        let typed = raw.bindMemory(to: M.CMessage.self, capacity: 1)
        try value.fill(typed, arena: self)
        return typed
    }

    func messages<M: CBackedMessage>(_ values: [M]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<M.CMessage>?>? {
        if values.isEmpty { return nil }
        let array = allocate(bytes: MemoryLayout<UnsafeMutablePointer<M.CMessage>?>.stride * values.count)
            .bindMemory(to: UnsafeMutablePointer<M.CMessage>?.self, capacity: values.count)
        for (index, value) in values.enumerated() {
            array[index] = try message(value)
        }
        return array
    }

    /// A NUL-terminated copy. A Swift string is always valid UTF-8; U+0000 is
    /// refused because protobuf-c measures strings with strlen.
    func string(_ value: String, field: String) throws -> UnsafeMutablePointer<CChar>? {
        if value.utf8.contains(0) { throw MessageError.invalidString(field: field) }
        guard let copy = value.withCString({ strdup($0) }) else {
            preconditionFailure("out of memory encoding a message")
        }
        allocations.append(UnsafeMutableRawPointer(copy))
        return copy
    }

    func strings(_ values: [String], field: String) throws -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        if values.isEmpty { return nil }
        let array = allocate(bytes: MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * values.count)
            .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: values.count)
        for (index, value) in values.enumerated() {
            array[index] = try string(value, field: field)
        }
        return array
    }

    func binary(_ value: [UInt8]) -> ProtobufCBinaryData {
        if value.isEmpty { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = allocate(bytes: value.count).bindMemory(to: UInt8.self, capacity: value.count)
        value.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: value.count) }
        return ProtobufCBinaryData(len: value.count, data: pointer)
    }

    func array<T, C>(_ values: [T], _ convert: (T) -> C) -> UnsafeMutablePointer<C>? {
        if values.isEmpty { return nil }
        let array = allocate(bytes: MemoryLayout<C>.stride * values.count)
            .bindMemory(to: C.self, capacity: values.count)
        for (index, value) in values.enumerated() {
            array[index] = convert(value)
        }
        return array
    }
}
