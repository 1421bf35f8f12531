/// The parts of PayPal's Orders v2, OAuth and webhook JSON billingd sends and
/// reads, as `Tests/Interop/vendor/` describes them. Answers: every field
/// optional where PayPal may leave it out; a field of the wrong type makes
/// the answer `.malformed`.
enum PayPalAPI {
    // MARK: Requests

    struct OrderRequest: Encodable {
        var intent = "CAPTURE"
        var purchaseUnits: [PurchaseUnit]
        var paymentSource: PaymentSource

        enum CodingKeys: String, CodingKey {
            case intent
            case purchaseUnits = "purchase_units"
            case paymentSource = "payment_source"
        }
    }

    struct PurchaseUnit: Encodable {
        var referenceID: String
        var customID: String
        var invoiceID: String
        var description: String
        var amount: Amount

        enum CodingKeys: String, CodingKey {
            case description, amount
            case referenceID = "reference_id"
            case customID = "custom_id"
            case invoiceID = "invoice_id"
        }
    }

    struct Amount: Codable {
        var currencyCode: String?
        var value: String?

        enum CodingKeys: String, CodingKey {
            case value
            case currencyCode = "currency_code"
        }
    }

    struct PaymentSource: Encodable {
        var paypal: Wallet
    }

    /// A wallet to pay with: a new one through PayPal's page (with the page's
    /// experience, and the vault request when saving), or a vaulted one.
    struct Wallet: Encodable {
        var experienceContext: ExperienceContext?
        var attributes: Attributes?
        var vaultID: String?

        enum CodingKeys: String, CodingKey {
            case attributes
            case experienceContext = "experience_context"
            case vaultID = "vault_id"
        }
    }

    struct ExperienceContext: Encodable {
        var returnURL: String
        var cancelURL: String
        var userAction = "PAY_NOW"
        var shippingPreference = "NO_SHIPPING"
        var brandName: String?

        enum CodingKeys: String, CodingKey {
            case returnURL = "return_url"
            case cancelURL = "cancel_url"
            case userAction = "user_action"
            case shippingPreference = "shipping_preference"
            case brandName = "brand_name"
        }
    }

    struct Attributes: Encodable {
        var vault = VaultRequest()

        struct VaultRequest: Encodable {
            var storeInVault = "ON_SUCCESS"
            var usageType = "MERCHANT"
            var customerType = "CONSUMER"

            enum CodingKeys: String, CodingKey {
                case storeInVault = "store_in_vault"
                case usageType = "usage_type"
                case customerType = "customer_type"
            }
        }
    }

    // MARK: Answers

    struct Order: Decodable {
        var id: String?
        var status: String?
        var links: [Link]?
        var purchaseUnits: [PaidUnit]?
        var paymentSource: PaidSource?

        enum CodingKeys: String, CodingKey {
            case id, status, links
            case purchaseUnits = "purchase_units"
            case paymentSource = "payment_source"
        }
    }

    struct Link: Decodable {
        var rel: String?
        var href: String?
    }

    struct PaidUnit: Decodable {
        var customID: String?
        var payments: Payments?

        enum CodingKeys: String, CodingKey {
            case payments
            case customID = "custom_id"
        }
    }

    struct Payments: Decodable {
        var captures: [Capture]?
        var refunds: [Refund]?
    }

    struct Capture: Decodable {
        var id: String?
        var status: String?
        var amount: Amount?
        var statusDetails: StatusDetails?

        enum CodingKeys: String, CodingKey {
            case id, status, amount
            case statusDetails = "status_details"
        }
    }

    struct StatusDetails: Decodable {
        var reason: String?
    }

    struct Refund: Decodable {
        var id: String?
        var status: String?
        var amount: Amount?
        var noteToPayer: String?

        enum CodingKeys: String, CodingKey {
            case id, status, amount
            case noteToPayer = "note_to_payer"
        }
    }

    struct PaidSource: Decodable {
        var paypal: PaidWallet?
    }

    struct PaidWallet: Decodable {
        var emailAddress: String?
        var attributes: PaidAttributes?

        struct PaidAttributes: Decodable {
            var vault: Vault?
        }

        struct Vault: Decodable {
            var id: String?
        }

        enum CodingKeys: String, CodingKey {
            case attributes
            case emailAddress = "email_address"
        }
    }

    /// PayPal's error answer: a name, a message, and the issues in details.
    struct ErrorAnswer: Decodable {
        var name: String?
        var message: String?
        var details: [Issue]?

        struct Issue: Decodable {
            var issue: String?
        }
    }

    struct Token: Decodable {
        var accessToken: String?
        var expiresIn: Int?
        var error: String?

        enum CodingKeys: String, CodingKey {
            case error
            case accessToken = "access_token"
            case expiresIn = "expires_in"
        }
    }

    struct Verification: Decodable {
        var verificationStatus: String?
        var name: String?

        enum CodingKeys: String, CodingKey {
            case name
            case verificationStatus = "verification_status"
        }
    }

    /// A webhook event: its id, type and the resource it is about (an order,
    /// a capture, a payment token). Read leniently: an event type whose
    /// resource has other fields still yields what it has.
    struct WebhookEvent: Decodable {
        var id: String?
        var eventType: String?
        var resource: Resource?

        enum CodingKeys: String, CodingKey {
            case id, resource
            case eventType = "event_type"
        }

        struct Resource: Decodable {
            var id: String?
            var customID: String?
            var purchaseUnits: [PaidUnit]?
            var orderID: String?
            var emailAddress: String?

            enum CodingKeys: String, CodingKey {
                case id, metadata
                case customID = "custom_id"
                case purchaseUnits = "purchase_units"
                case paymentSource = "payment_source"
            }

            private struct Metadata: Decodable {
                var orderID: String?
                enum CodingKeys: String, CodingKey { case orderID = "order_id" }
            }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                id = try? container.decodeIfPresent(String.self, forKey: .id)
                customID = try? container.decodeIfPresent(String.self, forKey: .customID)
                purchaseUnits = try? container.decodeIfPresent([PaidUnit].self, forKey: .purchaseUnits)
                orderID = (try? container.decodeIfPresent(Metadata.self, forKey: .metadata))??.orderID
                emailAddress =
                    (try? container.decodeIfPresent(PaidSource.self, forKey: .paymentSource))??.paypal?.emailAddress
            }
        }
    }
}
