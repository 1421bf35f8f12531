internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// `billing.v1.PaymentMethods`: payers and their saved methods.
struct PaymentMethodsService: BillingV1.PaymentMethodsService {
    let env: ServiceEnvironment

    func listPayers(
        _ request: BillingV1.ListPayersRequest,
        context: ServerContext
    ) async throws -> BillingV1.ListPayersResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            var response = BillingV1.ListPayersResponse()
            response.payers = try await env.store.payers(accountID: request.accountId).map(BillingV1.Payer.init)
            return response
        }
    }

    func listPaymentMethods(
        _ request: BillingV1.ListPaymentMethodsRequest,
        context: ServerContext
    ) async throws -> BillingV1.ListPaymentMethodsResponse {
        try await env.call(context) { auth in
            let payer = try await env.owned(
                "payer",
                request.payerId,
                auth,
                .read,
                load: { id throws(BillingError) in try await env.store.payer(id) },
                account: { $0.accountID }
            )
            let methods = try await env.store.paymentMethods(payerID: payer.id, includeRemoved: request.includeRemoved)
            var response = BillingV1.ListPaymentMethodsResponse()
            response.methods = methods.map(BillingV1.PaymentMethod.init)
            response.defaultMethodId = methods.first(where: \.isDefault)?.id ?? ""
            return response
        }
    }

    func setDefaultPaymentMethod(
        _ request: BillingV1.SetDefaultPaymentMethodRequest,
        context: ServerContext
    ) async throws -> BillingV1.PaymentMethod {
        try await env.call(context) { auth in
            _ = try await method(request.paymentMethodId, auth)
            return BillingV1.PaymentMethod(try await env.store.setDefaultMethod(request.paymentMethodId))
        }
    }

    func removePaymentMethod(
        _ request: BillingV1.RemovePaymentMethodRequest,
        context: ServerContext
    ) async throws -> BillingV1.PaymentMethod {
        try await env.call(context) { auth in
            let method = try await method(request.paymentMethodId, auth)
            return BillingV1.PaymentMethod(try await env.flows.removeMethod(method))
        }
    }

    private func method(_ id: String, _ auth: Authorization) async throws -> PaymentMethod {
        try await env.owned(
            "payment method",
            id,
            auth,
            .act,
            load: { id throws(BillingError) in try await env.store.paymentMethod(id) },
            account: { method throws(BillingError) in try await env.store.payer(method.payerID).accountID }
        )
    }
}
