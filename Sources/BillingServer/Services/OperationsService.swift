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
                // An account's own client sees that support acted, not who.
                entry.actor = auth.ownAccount != nil && record.who.hasPrefix("operator/") ? "operator" : record.who
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

    /// A period of at most 366 days, not starting in the future.
    static let maxReconcilePeriod: Int64 = 366 * 86_400_000

    func reconcile(
        _ request: BillingV1.ReconcileRequest,
        context: ServerContext
    ) async throws -> BillingV1.ReconcileResponse {
        try await env.call(context) { auth in
            try auth.requireInternalOrOperator("Reconcile")
            // A period in the past: it starts before now and ends by now (a
            // later end is taken as now), so every time below stays far from
            // Int64's bounds.
            let now = env.clock.nowMs
            let from = request.fromUnixMs
            guard from > 0, from < now else {
                throw BillingError.invalidArgument("from_unix_ms must be set and before now")
            }
            let to = request.toUnixMs == 0 ? now : min(request.toUnixMs, now)
            guard from < to else {
                throw BillingError.invalidArgument("from_unix_ms must be before to_unix_ms")
            }
            guard to - from <= Self.maxReconcilePeriod else {
                throw BillingError.invalidArgument("a period of at most 366 days; reconcile a longer one in parts")
            }
            let systems: [PaymentSystem]
            if request.system == .unspecified {
                systems = env.flows.systems
            } else {
                guard let system = request.system.domain else {
                    throw BillingError.invalidArgument("unknown payment system \(request.system)")
                }
                try env.flows.requireSystem(system)
                systems = [system]
            }
            let report = try await env.reconciler.run(systems: systems, fromMs: from, toMs: to)
            if !report.disagreements.isEmpty {
                env.logger.warning(
                    "reconciliation found disagreements",
                    metadata: ["count": "\(report.disagreements.count)", "from_ms": "\(from)", "to_ms": "\(to)"]
                )
            }
            var response = BillingV1.ReconcileResponse()
            response.agree = report.disagreements.isEmpty
            response.paymentsCompared = UInt64(report.paymentsCompared)
            response.notCompared = report.notCompared
            response.disagreements = report.disagreements.map { found in
                var disagreement = BillingV1.Disagreement()
                disagreement.kind = found.kind.rawValue
                disagreement.system = BillingV1.PaymentSystem(found.system)
                disagreement.paymentId = found.paymentID ?? ""
                disagreement.reference = found.reference
                disagreement.here = found.here
                disagreement.there = found.there
                return disagreement
            }
            return response
        }
    }
}
