/// The parts of Stripe's objects billingd reads (API version 2023-08-16, as
/// `Tests/Interop/vendor/stripe-openapi.json` describes them). Every field is
/// optional where Stripe may leave it out or null; a field of the wrong type
/// makes the whole answer `.malformed`.
enum StripeAPI {
    /// A field Stripe sends as an id, or as the object when asked to expand it.
    enum Expandable<Object: Decodable>: Decodable {
        case id(String)
        case object(Object)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let id = try? container.decode(String.self) {
                self = .id(id)
            } else {
                self = .object(try container.decode(Object.self))
            }
        }

        var expanded: Object? {
            if case .object(let object) = self { return object }
            return nil
        }
    }

    /// Any object of which only the id is read (a customer).
    struct Identified: Decodable {
        var id: String?
    }

    struct List<Element: Decodable>: Decodable {
        var data: [Element]
        var hasMore: Bool?

        enum CodingKeys: String, CodingKey {
            case data
            case hasMore = "has_more"
        }
    }

    struct CheckoutSession: Decodable {
        var id: String?
        var url: String?
        /// open, complete, expired.
        var status: String?
        /// paid, unpaid, no_payment_required.
        var paymentStatus: String?
        var customer: Expandable<Identified>?
        var paymentIntent: Expandable<PaymentIntent>?
        var amountTotal: Int64?
        var currency: String?

        enum CodingKeys: String, CodingKey {
            case id, url, status, customer, currency
            case paymentStatus = "payment_status"
            case paymentIntent = "payment_intent"
            case amountTotal = "amount_total"
        }
    }

    struct PaymentIntent: Decodable {
        var id: String?
        var status: String?
        var created: Int64?
        var metadata: [String: String]?
        var lastPaymentError: PaymentError?
        var paymentMethod: Expandable<Identified>?
        var amount: Int64?
        var currency: String?

        enum CodingKeys: String, CodingKey {
            case id, status, created, metadata, amount, currency
            case lastPaymentError = "last_payment_error"
            case paymentMethod = "payment_method"
        }
    }

    struct PaymentError: Decodable {
        var code: String?
    }

    /// Stripe's error answer: `{"error": {...}}`.
    struct ErrorAnswer: Decodable {
        var error: Detail?

        struct Detail: Decodable {
            var type: String?
            var code: String?
            var declineCode: String?
            var param: String?
            var message: String?
            var paymentIntent: Identified?

            enum CodingKeys: String, CodingKey {
                case type, code, param, message
                case declineCode = "decline_code"
                case paymentIntent = "payment_intent"
            }
        }
    }

    struct Refund: Decodable {
        var id: String?
        var status: String?
        var amount: Int64?
        var currency: String?
        var reason: String?
    }

    struct Dispute: Decodable {
        var id: String?
        var amount: Int64?
        var currency: String?
        var reason: String?
        var balanceTransactions: [BalanceTransaction]?

        struct BalanceTransaction: Decodable {
            var amount: Int64?
        }

        enum CodingKeys: String, CodingKey {
            case id, amount, currency, reason
            case balanceTransactions = "balance_transactions"
        }
    }

    /// A PaymentMethod: its type, and the details under the key of that type
    /// (`"card": {...}`, `"sepa_debit": {...}`).
    struct PaymentMethod: Decodable {
        var type: String
        var details: Details

        struct Details: Decodable {
            var brand: String?
            var last4: String?
            var bankName: String?
            var email: String?

            enum CodingKeys: String, CodingKey {
                case brand, last4, email
                case bankName = "bank_name"
            }
        }

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            type = try container.decodeIfPresent(String.self, forKey: Key(stringValue: "type")) ?? ""
            let key = Key(stringValue: type)
            details =
                (type.isEmpty ? nil : try container.decodeIfPresent(Details.self, forKey: key))
                ?? Details(brand: nil, last4: nil, bankName: nil, email: nil)
        }
    }
}
