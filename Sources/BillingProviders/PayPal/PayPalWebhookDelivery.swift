/// A webhook delivery as PayPal sent it: its transmission headers and body.
public struct PayPalWebhookDelivery: Sendable, Hashable {
    public var authAlgorithm: String
    public var certificateURL: String
    public var transmissionID: String
    public var transmissionSignature: String
    public var transmissionTime: String
    public var body: [UInt8]

    public init(
        authAlgorithm: String,
        certificateURL: String,
        transmissionID: String,
        transmissionSignature: String,
        transmissionTime: String,
        body: [UInt8]
    ) {
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
    /// VAULT.PAYMENT-TOKEN.CREATED: the wallet saved for an order, when PayPal
    /// sends its id after the capture.
    public var vaultedWallet: VaultedWallet?

    public struct VaultedWallet: Sendable, Hashable {
        public var orderID: String
        public var method: SavedMethod
    }

    public init(id: String, type: String, paymentID: String?, vaultedWallet: VaultedWallet? = nil) {
        self.id = id
        self.type = type
        self.paymentID = paymentID
        self.vaultedWallet = vaultedWallet
    }
}
