/// A webhook delivery as PayPal sent it: its transmission headers and body.
public struct PayPalWebhookDelivery: Sendable, Hashable {
    public var authAlgorithm: String
    public var certificateURL: String
    public var transmissionID: String
    public var transmissionSignature: String
    public var transmissionTime: String
    public var body: [UInt8]

    public init(authAlgorithm: String, certificateURL: String, transmissionID: String, transmissionSignature: String,
                transmissionTime: String, body: [UInt8]) {
        self.authAlgorithm = authAlgorithm
        self.certificateURL = certificateURL
        self.transmissionID = transmissionID
        self.transmissionSignature = transmissionSignature
        self.transmissionTime = transmissionTime
        self.body = body
    }
}

/// A delivery PayPal says it sent.
public struct PayPalWebhookEvent: Sendable, Hashable {
    public var id: String
    public var type: String
    /// Our payment id, when the event concerns one of our orders.
    public var paymentID: String?

    public init(id: String, type: String, paymentID: String?) {
        self.id = id
        self.type = type
        self.paymentID = paymentID
    }
}
