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
