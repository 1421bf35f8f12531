internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// `billing.v1.Renewal`: renewing services from the balance or a payment.
struct RenewalService: BillingV1.RenewalService {
    let env: ServiceEnvironment

    func listRenewableServices(
        _ request: BillingV1.ListRenewableServicesRequest,
        context: ServerContext
    ) async throws -> BillingV1.ListRenewableServicesResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            let size = try ServiceEnvironment.pageSize(request.page?.pageSize ?? 0)
            var services = try await env.store.renewableServices(accountID: request.accountId)
            // Keyset paging on (expiry, id), the list's order.
            if let token = request.page?.pageToken, !token.isEmpty {
                let cursor = try PageToken(token)
                services = services.filter { ($0.expiresAtMs, $0.id) > (cursor.sortKey, cursor.id) }
            }
            var response = BillingV1.ListRenewableServicesResponse()
            response.services = services.prefix(size).map(BillingV1.RenewableService.init)
            if services.count > size, let last = services.prefix(size).last {
                response.nextPageToken = PageToken(sortKey: last.expiresAtMs, id: last.id).encoded
            }
            return response
        }
    }

    func quoteRenewal(
        _ request: BillingV1.QuoteRenewalRequest,
        context: ServerContext
    ) async throws -> BillingV1.QuoteRenewalResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            var option: PaymentOption?
            if request.option != nil {
                let chosen = try PaymentOption(request.option)
                try await env.checkOption(chosen, accountID: request.accountId, auth)
                option = chosen
            }
            let quote = try await env.store.quoteRenewal(
                accountID: request.accountId,
                items: items(request.items),
                option: option
            )
            var response = BillingV1.QuoteRenewalResponse()
            response.lines = quote.lines.map(BillingV1.RenewalLine.init)
            response.total = BillingV1.Money(quote.total)
            response.fromBalance = BillingV1.Money(quote.fromBalance)
            response.toPay = BillingV1.Money(quote.toPay)
            response.credited = BillingV1.Money(quote.credited)
            response.note = quote.note
            return response
        }
    }

    func renew(_ request: BillingV1.RenewRequest, context: ServerContext) async throws -> BillingV1.RenewResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.act, account: request.accountId)
            let option = try PaymentOption(request.option)
            var payerID: String?
            if !request.payerId.isEmpty {
                payerID = try await env.payer(request.payerId, of: request.accountId, auth).id
            }
            try await env.checkOption(option, accountID: request.accountId, auth)
            let expected = try request.expectedTotal.map { money throws(BillingError) in
                try Money(money, field: "expected_total")
            }
            let expectedToPay = try request.expectedToPay.map { money throws(BillingError) in
                try Money(money, field: "expected_to_pay")
            }
            let (order, created) = try await env.store.renew(
                accountID: request.accountId,
                payerID: payerID,
                items: items(request.items),
                option: option,
                expectedTotal: expected,
                expectedToPay: expectedToPay,
                idempotencyKey: try env.idempotencyKey(context)
            )
            var response = BillingV1.RenewResponse()
            if let created {
                let payment = try await env.flows.start(created)
                response.payment = BillingV1.Payment(payment)
                response.redirectUrl = payment.status == .new ? payment.redirectURL : ""
                response.order = BillingV1.RenewalOrder(try await env.store.renewalOrder(order.id))
            } else {
                response.order = BillingV1.RenewalOrder(order)
            }
            return response
        }
    }

    func getRenewalOrder(
        _ request: BillingV1.GetRenewalOrderRequest,
        context: ServerContext
    ) async throws -> BillingV1.RenewalOrder {
        try await env.call(context) { auth in
            let order = try await env.owned(
                "renewal order",
                request.orderId,
                auth,
                .read,
                load: { id throws(BillingError) in try await env.store.renewalOrder(id) },
                account: { $0.accountID }
            )
            return BillingV1.RenewalOrder(order)
        }
    }

    func upsertRenewableService(
        _ request: BillingV1.UpsertRenewableServiceRequest,
        context: ServerContext
    ) async throws -> BillingV1.RenewableService {
        try await env.call(context) { auth in
            try auth.requireInternal("UpsertRenewableService")
            guard let service = request.service else { throw BillingError.invalidArgument("service is required") }
            let saved = try await env.store.upsertRenewableService(
                RenewableService(
                    id: service.id,
                    accountID: service.accountId,
                    displayName: service.displayName,
                    pricePerPeriod: try Money(service.pricePerPeriod, field: "price_per_period"),
                    periodDays: Int(service.periodDays),
                    expiresAtMs: service.expiresAtUnixMs,
                    updatedAtMs: 0,
                    autoRenewal: try AutoRenewal.from(service.autoRenewal)
                ),
                keepingAutoRenewal: service.autoRenewal == nil
            )
            return BillingV1.RenewableService(saved)
        }
    }

    private func items(_ items: [BillingV1.RenewalItem]) -> [RenewalItem] {
        items.map { RenewalItem(serviceID: $0.serviceId, periods: Int(clamping: $0.periods)) }
    }

    func setAutoRenewal(
        _ request: BillingV1.SetAutoRenewalRequest,
        context: ServerContext
    ) async throws -> BillingV1.RenewableService {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try IDs.check(request.serviceId, "service id")
            try auth.require(.act, account: request.accountId)
            let auto = try AutoRenewal.from(request.autoRenewal)
            if let payerID = auto?.payerID { _ = try await env.payer(payerID, of: request.accountId, auth) }
            let saved = try await env.store.setAutoRenewal(
                accountID: request.accountId,
                serviceID: request.serviceId,
                auto
            )
            return BillingV1.RenewableService(saved)
        }
    }
}
