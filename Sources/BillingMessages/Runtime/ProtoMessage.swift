/// A protobuf message as a Swift value. Every type in `Generated/` conforms.
///
/// Values hold no C memory: encoding builds a protobuf-c struct in a
/// short-lived `CArena`, packs it and frees it; decoding unpacks with
/// protobuf-c, copies out and frees. No pointer outlives the call.
public protocol ProtoMessage: Sendable, Hashable {
    /// The fully qualified proto name, e.g. "billing.v1.Payment".
    static var protoName: String { get }

    /// A message with every field at its proto3 default.
    init()

    /// The protobuf wire encoding.
    ///
    /// - Throws: `MessageError.invalidString` for a string holding U+0000 (protobuf-c
    ///   keeps strings NUL-terminated, so it would be cut there), `.tooLarge` past
    ///   `DecodeLimits.maxMessageBytes`.
    func serializedBytes() throws -> [UInt8]

    /// Decodes `bytes`, checking them against `limits` before protobuf-c sees them.
    ///
    /// - Throws: `MessageError`; never traps on hostile input.
    init(serializedBytes bytes: some Collection<UInt8>, limits: DecodeLimits) throws
}

/// A proto3 enum: open, so values this build does not know survive as
/// `.unrecognized(n)`.
public protocol ProtoEnum: Sendable, Hashable, RawRepresentable where RawValue == Int32 {
    init()
    init(rawValue: Int32)
    static var knownCases: [Self] { get }
}
