internal import BillingAPI
internal import BillingCore
internal import BillingMessages
internal import BillingRPC

/// `billing.v1.Operations`: billingd's own state, for operators and internal services.
struct OperationsService: BillingV1.OperationsService {
    let env: ServiceEnvironment

    func checkStorage(
        _ request: BillingV1.CheckStorageRequest,
        context: ServerContext
    ) async throws -> BillingV1.CheckStorageResponse {
        try await env.call(context) { auth in
            try auth.requireInternalOrOperator("CheckStorage")
            let (accounts, problems) = try await env.store.checkStorage()
            if !problems.isEmpty {
                env.logger.critical("storage check found problems", metadata: ["problems": "\(problems.prefix(10))"])
            }
            var response = BillingV1.CheckStorageResponse()
            response.ok = problems.isEmpty
            response.problems = problems
            response.accountsChecked = UInt64(accounts)
            return response
        }
    }
}
