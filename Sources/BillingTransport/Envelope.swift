internal import BillingMessages
internal import BillingRPC
internal import NIOCore

/// Encoding of the ttrpc envelopes into frame payloads.
enum Envelope {
    static func response(_ result: Result<[UInt8], RPCError>, allocator: ByteBufferAllocator) -> ByteBuffer {
        var response = BillingV1.Response()
        switch result {
        case .success(let payload):
            response.payload = payload
        case .failure(let error):
            response.status = error.status
        }
        // A Response holds only a status and a payload that was already size-
        // checked, so encoding cannot fail; an empty buffer would still be OK.
        let bytes = (try? response.serializedBytes()) ?? []
        return allocator.buffer(bytes: bytes)
    }
}
