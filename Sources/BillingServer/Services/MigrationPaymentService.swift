internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// `billing.v1.MigrationPayment`: paying for the server of an ordered migration.
struct MigrationPaymentService: BillingV1.MigrationPaymentService {
    let env: ServiceEnvironment

    func createMigrationOrder(
        _ request: BillingV1.CreateMigrationOrderRequest,
        context: ServerContext
    ) async throws -> BillingV1.MigrationOrder {
        try await env.call(context) { auth in
            try auth.requireInternal("CreateMigrationOrder")
            try IDs.check(request.accountId, "account id")
            return BillingV1.MigrationOrder(
                try await env.store.createMigrationOrder(
                    accountID: request.accountId,
                    externalID: request.externalId,
                    description: request.description,
                    serverPrice: try Money(request.serverPrice, field: "server_price")
                )
            )
        }
    }

    func getMigrationOrder(
        _ request: BillingV1.GetMigrationOrderRequest,
        context: ServerContext
    ) async throws -> BillingV1.MigrationOrder {
        try await env.call(context) { auth in
            BillingV1.MigrationOrder(try await order(request.orderId, auth, .read))
        }
    }

    func payMigrationOrder(
        _ request: BillingV1.PayMigrationOrderRequest,
        context: ServerContext
    ) async throws -> BillingV1.PayMigrationOrderResponse {
        try await env.call(context) { auth in
            let order = try await order(request.orderId, auth, .act)
            let option = try PaymentOption(request.option)
            var payerID: String?
            if !request.payerId.isEmpty { payerID = try await env.payer(request.payerId, of: order.accountID, auth).id }
            try await env.checkOption(option, accountID: order.accountID, auth)
            let (updated, created) = try await env.store.payMigrationOrder(
                order.id,
                payerID: payerID,
                option: option,
                idempotencyKey: try env.idempotencyKey(context)
            )
            var response = BillingV1.PayMigrationOrderResponse()
            if let created {
                let payment = try await env.flows.start(created)
                response.payment = BillingV1.Payment(payment)
                response.redirectUrl = payment.status == .new ? payment.redirectURL : ""
                response.order = BillingV1.MigrationOrder(try await env.store.migrationOrder(order.id))
            } else {
                response.order = BillingV1.MigrationOrder(updated)
            }
            return response
        }
    }

    private func order(
        _ id: String,
        _ auth: Authorization,
        _ access: Authorization.Access
    ) async throws -> MigrationOrder {
        try await env.owned(
            "migration order",
            id,
            auth,
            access,
            load: { id throws(BillingError) in try await env.store.migrationOrder(id) },
            account: { $0.accountID }
        )
    }
}
