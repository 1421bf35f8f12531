internal import BillingAPI
internal import BillingCore
internal import BillingDocuments
internal import BillingMessages
internal import BillingRPC

/// `billing.v1.Balance`: the top-up page, the payment history, invoices and
/// the event streams.
struct BalanceService: BillingV1.BalanceService {
    let env: ServiceEnvironment

    func getBalance(
        _ request: BillingV1.GetBalanceRequest,
        context: ServerContext
    ) async throws -> BillingV1.GetBalanceResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            let (funds, sequence) = try await env.store.balance(accountID: request.accountId)
            var response = BillingV1.GetBalanceResponse()
            response.balance = BillingV1.Money(funds.balance)
            response.held = BillingV1.Money(funds.held)
            response.available = BillingV1.Money(funds.available)
            response.asOfSequence = sequence
            return response
        }
    }

    func getTopUpOptions(
        _ request: BillingV1.GetTopUpOptionsRequest,
        context: ServerContext
    ) async throws -> BillingV1.GetTopUpOptionsResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            let account = try await env.store.account(request.accountId)
            let policy = try env.limits.topUpPolicy(account.currency)
            var response = BillingV1.GetTopUpOptionsResponse()
            response.minAmount = BillingV1.Money(policy.minimum)
            response.maxAmount = BillingV1.Money(policy.maximum)
            response.presets = policy.presets.map(BillingV1.Money.init)
            for payer in try await env.store.payers(accountID: request.accountId) {
                var options = BillingV1.PayerOptions()
                options.payer = BillingV1.Payer(payer)
                let methods = try await env.store.paymentMethods(payerID: payer.id, includeRemoved: false).filter {
                    $0.status == .confirmed
                }
                options.methods = methods.map(BillingV1.PaymentMethod.init)
                options.defaultMethodId = methods.first(where: \.isDefault)?.id ?? ""
                response.payers.append(options)
            }
            for system in env.flows.systems {
                guard let range = env.limits.range(system, account.currency) else { continue }
                response.paymentSystems.append(BillingV1.PaymentSystem(system))
                var limits = BillingV1.PaymentSystemLimits()
                limits.system = BillingV1.PaymentSystem(system)
                limits.minAmount = BillingV1.Money(range.minimum)
                limits.maxAmount = BillingV1.Money(range.maximum)
                response.systemLimits.append(limits)
            }
            response.invoiceAvailable = true
            return response
        }
    }

    func createTopUp(
        _ request: BillingV1.CreateTopUpRequest,
        context: ServerContext
    ) async throws -> BillingV1.CreateTopUpResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.act, account: request.accountId)
            let amount = try Money(request.amount, field: "amount")
            let option = try PaymentOption(request.option)
            _ = try await env.payer(request.payerId, of: request.accountId, auth)
            try await env.checkOption(option, accountID: request.accountId, auth)
            if case .paymentSystem(let system, _, _) = option { try env.flows.requireSystem(system) }
            let created = try await env.store.createTopUp(
                TopUpRequest(accountID: request.accountId, payerID: request.payerId, amount: amount, option: option),
                idempotencyKey: try env.idempotencyKey(context)
            )
            let payment = try await env.flows.start(created)
            var response = BillingV1.CreateTopUpResponse()
            response.payment = BillingV1.Payment(payment)
            response.redirectUrl = payment.status == .new ? payment.redirectURL : ""
            return response
        }
    }

    func getPayment(_ request: BillingV1.GetPaymentRequest, context: ServerContext) async throws -> BillingV1.Payment {
        try await env.call(context) { auth in
            let payment = try await load(request.paymentId, auth, .read)
            return BillingV1.Payment(payment)
        }
    }

    func refreshPayment(
        _ request: BillingV1.RefreshPaymentRequest,
        context: ServerContext
    ) async throws -> BillingV1.Payment {
        try await env.call(context) { auth in
            let payment = try await load(request.paymentId, auth, .read)
            return BillingV1.Payment(try await env.flows.check(payment))
        }
    }

    func cancelPayment(
        _ request: BillingV1.CancelPaymentRequest,
        context: ServerContext
    ) async throws -> BillingV1.Payment {
        try await env.call(context) { auth in
            try Text.check(request.reason, "reason", max: 500)
            let payment = try await load(request.paymentId, auth, .act)
            return BillingV1.Payment(
                try await env.flows.cancel(
                    payment,
                    reason: request.reason.isEmpty ? "cancelled by the payer" : request.reason,
                    by: .payer
                )
            )
        }
    }

    func listPayments(
        _ request: BillingV1.ListPaymentsRequest,
        context: ServerContext
    ) async throws -> BillingV1.ListPaymentsResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            var query = PaymentQuery(accountID: request.accountId)
            for status in request.statuses {
                guard let known = status.domain else {
                    throw BillingError.invalidArgument("unknown status filter \(status.rawValue)")
                }
                query.statuses.insert(known)
            }
            for purpose in request.purposes {
                guard let known = purpose.domain else {
                    throw BillingError.invalidArgument("unknown purpose filter \(purpose.rawValue)")
                }
                query.purposes.insert(known)
            }
            if !request.payerId.isEmpty {
                query.payerID = try await env.payer(request.payerId, of: request.accountId, auth).id
            }
            if let range = request.created {
                query.createdFromMs = range.fromUnixMs == 0 ? nil : range.fromUnixMs
                query.createdToMs = range.toUnixMs == 0 ? nil : range.toUnixMs
            }
            query.pageSize = try ServiceEnvironment.pageSize(request.page?.pageSize ?? 0)
            if let token = request.page?.pageToken, !token.isEmpty { query.pageToken = token }
            let page = try await env.store.listPayments(query)
            var response = BillingV1.ListPaymentsResponse()
            response.payments = page.items.map(BillingV1.Payment.init)
            response.nextPageToken = page.nextPageToken ?? ""
            return response
        }
    }

    func settleInvoice(
        _ request: BillingV1.SettleInvoiceRequest,
        context: ServerContext
    ) async throws -> BillingV1.Payment {
        try await env.call(context) { auth in
            try auth.requireOperator("SettleInvoice")
            try Text.check(request.reference, "reference", max: 200)
            let payment = try await invoice(request.paymentId)
            let settled = try await env.flows.settleInvoice(payment, reference: request.reference)
            if payment.status == .new {
                env.logger.notice(
                    "invoice settled",
                    metadata: ["payment": "\(payment.id)", "operator": "\(auth.principal?.name ?? "")"]
                )
            }
            return BillingV1.Payment(settled)
        }
    }

    func cancelInvoice(
        _ request: BillingV1.CancelInvoiceRequest,
        context: ServerContext
    ) async throws -> BillingV1.Payment {
        try await env.call(context) { auth in
            try auth.requireOperator("CancelInvoice")
            try Text.check(request.reason, "reason", max: 500)
            let payment = try await invoice(request.paymentId)
            switch payment.status {
            case .cancelled: return BillingV1.Payment(payment)
            case .paid: throw BillingError.failedPrecondition("invoice \(payment.id) is paid; it cannot be cancelled")
            case .new: break
            }
            env.logger.notice(
                "invoice cancelled",
                metadata: ["payment": "\(payment.id)", "operator": "\(auth.principal?.name ?? "")"]
            )
            return BillingV1.Payment(
                try await env.flows.cancel(
                    payment,
                    reason: request.reason.isEmpty ? "invoice cancelled" : request.reason,
                    by: .support
                )
            )
        }
    }

    func listNotifications(
        _ request: BillingV1.ListNotificationsRequest,
        context: ServerContext
    ) async throws -> BillingV1.ListNotificationsResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            let size = try ServiceEnvironment.pageSize(request.page?.pageSize ?? 0)
            let token = request.page?.pageToken ?? ""
            let page = try await env.store.notifications(
                accountID: request.accountId,
                pageSize: size,
                pageToken: token.isEmpty ? nil : token
            )
            var response = BillingV1.ListNotificationsResponse()
            response.notifications = page.items.map(BillingV1.Notification.init)
            response.nextPageToken = page.nextPageToken ?? ""
            return response
        }
    }

    func watchPayments(
        _ request: BillingV1.WatchPaymentsRequest,
        context: ServerContext,
        stream: ServerStreamWriter<BillingV1.PaymentEvent>
    ) async throws {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            _ = try await env.store.account(request.accountId)
            try await env.streams.follow(accountID: request.accountId, after: request.afterSequence, stream: stream)
        }
    }

    func watchAllPayments(
        _ request: BillingV1.WatchAllPaymentsRequest,
        context: ServerContext,
        stream: ServerStreamWriter<BillingV1.PaymentEvent>
    ) async throws {
        try await env.call(context) { auth in
            try auth.requireInternalOrOperator("WatchAllPayments")
            try await env.streams.follow(accountID: nil, after: request.afterSequence, stream: stream)
        }
    }

    func getInvoice(
        _ request: BillingV1.GetInvoiceRequest,
        context: ServerContext
    ) async throws -> BillingV1.InvoiceDocument {
        try await env.call(context) { auth in
            let document = try await env.owned(
                "invoice",
                request.invoice,
                auth,
                .read,
                load: { id throws(BillingError) in try await env.store.invoiceDocument(id) },
                account: { $0.invoice.accountID }
            )
            var response = BillingV1.InvoiceDocument()
            response.invoice = BillingV1.Invoice(document)
            switch request.format {
            case .html:
                response.contentType = "text/html; charset=utf-8"
                response.content = Array(InvoiceHTML.render(document).utf8)
            case .pdf:
                response.contentType = "application/pdf"
                do {
                    response.content = try InvoicePDF.render(document)
                } catch {
                    throw BillingError.storage("\(error)", retryable: false)
                }
            case .unspecified:
                break
            case .unrecognized(let value):
                throw BillingError.invalidArgument("format \(value) is not html or pdf")
            }
            return response
        }
    }

    private func load(_ id: String, _ auth: Authorization, _ access: Authorization.Access) async throws -> Payment {
        try await env.owned(
            "payment",
            id,
            auth,
            access,
            load: { id throws(BillingError) in try await env.store.payment(id) },
            account: { $0.accountID }
        )
    }

    private func invoice(_ id: String) async throws -> Payment {
        try IDs.check(id, "payment id")
        let payment = try await env.store.payment(id)
        guard payment.optionKind == .invoice else {
            throw BillingError.failedPrecondition("payment \(id) is not an invoice")
        }
        return payment
    }
}
