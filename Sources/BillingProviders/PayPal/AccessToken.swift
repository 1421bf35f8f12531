/// The OAuth2 access token, shared by every call and fetched once however
/// many calls need it at the same moment; renewed shortly before it expires
/// (a tenth of its life, at most five minutes, early).
actor AccessToken {
    typealias Fetch = @Sendable () async throws(ProviderError) -> (token: String, lifetime: Duration)

    private var token: String?
    private var renewAt = ContinuousClock.Instant.now
    private var inFlight: Task<(token: String, lifetime: Duration), any Error>?
    /// Bumped when the credentials change: a fetch started before is not kept.
    private var generation = 0

    func current(_ fetch: @escaping Fetch) async throws(ProviderError) -> String {
        if let token, ContinuousClock.now < renewAt { return token }
        return try await renew(fetch, replacing: token)
    }

    /// The credentials changed: the next call fetches a new token, and a
    /// fetch already on its way (with the old credentials) is not kept.
    func forget() {
        token = nil
        inFlight = nil
        generation += 1
    }

    /// A new token, unless another caller already replaced `stale`.
    func renew(_ fetch: @escaping Fetch, replacing stale: String?) async throws(ProviderError) -> String {
        if let token, token != stale, ContinuousClock.now < renewAt { return token }
        let task = inFlight ?? Task { () async throws -> (token: String, lifetime: Duration) in try await fetch() }
        inFlight = task
        let started = generation
        defer { if inFlight == task { inFlight = nil } }
        let fetched: (token: String, lifetime: Duration)
        do {
            fetched = try await task.value
        } catch let error as ProviderError {
            throw error
        } catch {
            throw .unavailable("fetching a PayPal token: \(error)")
        }
        // Fetched with credentials replaced meanwhile: used for this call at
        // most (PayPal refuses it if they were revoked), never kept.
        guard generation == started else { return fetched.token }
        token = fetched.token
        renewAt = ContinuousClock.now + fetched.lifetime - min(fetched.lifetime / 10, .seconds(300))
        return fetched.token
    }
}
