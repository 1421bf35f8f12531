internal import CProtobufC

/// The generated half of a message: how it crosses the protobuf-c boundary.
/// Internal, so no C type appears in the module's public interface.
protocol CBackedMessage: ProtoMessage {
    associatedtype CMessage

    /// The protoc-c descriptor (a static in `CBillingProto`, never a copy).
    static var cDescriptor: UnsafePointer<ProtobufCMessageDescriptor> { get }

    /// Writes `self` into `c`, an initialised struct owned by `arena`.
    func fill(_ c: UnsafeMutablePointer<CMessage>, arena: CArena) throws

    /// Copies a struct that protobuf-c unpacked; `c` is freed by the caller.
    init(c: UnsafePointer<CMessage>) throws
}
