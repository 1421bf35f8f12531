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

extension RPCError {
    /// The ttrpc envelope's status (the cause stays on this side).
    var status: BillingV1.Status {
        var status = BillingV1.Status()
        status.code = code.rawValue
        status.message = message
        return status
    }

    init(status: BillingV1.Status) {
        self.init(StatusCode(rawValue: status.code), status.message)
    }
}
