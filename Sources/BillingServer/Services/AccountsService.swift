internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// `billing.v1.Accounts`: provisioning for internal services.
struct AccountsService: BillingV1.AccountsService {
    let env: ServiceEnvironment

    func createAccount(
        _ request: BillingV1.CreateAccountRequest,
        context: ServerContext
    ) async throws -> BillingV1.Account {
        try await env.call(context) { auth in
            try auth.requireInternal("CreateAccount")
            try Text.check(request.displayName, "display name", max: 200)
            let currency = request.currency.isEmpty ? env.limits.defaultCurrency : try Currency(code: request.currency)
            return BillingV1.Account(
                try await env.store.createAccount(
                    id: request.accountId,
                    displayName: request.displayName,
                    currency: currency
                )
            )
        }
    }

    func getAccount(_ request: BillingV1.GetAccountRequest, context: ServerContext) async throws -> BillingV1.Account {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            return BillingV1.Account(try await env.store.account(request.accountId))
        }
    }

    func createPayer(_ request: BillingV1.CreatePayerRequest, context: ServerContext) async throws -> BillingV1.Payer {
        try await env.call(context) { auth in
            try auth.requireInternal("CreatePayer")
            try IDs.check(request.accountId, "account id")
            return BillingV1.Payer(
                try await env.store.createPayer(
                    accountID: request.accountId,
                    displayName: request.displayName,
                    email: request.email
                )
            )
        }
    }
}
