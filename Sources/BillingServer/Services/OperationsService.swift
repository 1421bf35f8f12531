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

    func listAudit(
        _ request: BillingV1.ListAuditRequest,
        context: ServerContext
    ) async throws -> BillingV1.ListAuditResponse {
        try await env.call(context) { auth in
            try IDs.check(request.accountId, "account id")
            try auth.require(.read, account: request.accountId)
            if !request.paymentId.isEmpty { try IDs.check(request.paymentId, "payment id") }
            guard request.sinceUnixMs >= 0 else {
                throw BillingError.invalidArgument("since_unix_ms must not be negative")
            }
            _ = try await env.store.account(request.accountId)
            let size = try ServiceEnvironment.pageSize(request.page?.pageSize ?? 0)
            var query = AuditQuery(
                accountID: request.accountId,
                paymentID: request.paymentId.isEmpty ? nil : request.paymentId,
                sinceMs: request.sinceUnixMs == 0 ? nil : request.sinceUnixMs,
                limit: size
            )
            if let token = request.page?.pageToken, !token.isEmpty {
                // The last entry's id, tied to its account.
                let cursor = try PageToken(token)
                guard cursor.id == request.accountId, cursor.sortKey > 0 else {
                    throw BillingError.invalidArgument("page token is not one this server gave")
                }
                query.afterID = cursor.sortKey
            }
            let entries = try await env.store.auditTrail(query)
            var response = BillingV1.ListAuditResponse()
            response.entries = entries.map { record in
                var entry = BillingV1.AuditEntry()
                entry.id = UInt64(record.id)
                entry.accountId = record.accountID
                entry.paymentId = record.paymentID ?? ""
                entry.subject = record.subject
                entry.action = record.action
                entry.detail = record.detail
                entry.actor = record.who
                entry.via = record.via
                entry.atUnixMs = record.atMs
                return entry
            }
            if entries.count == size, let last = entries.last {
                response.nextPageToken = PageToken(sortKey: last.id, id: request.accountId).encoded
            }
            return response
        }
    }
}
