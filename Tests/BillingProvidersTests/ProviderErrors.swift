import BillingProviders

/// The `ProviderError` `body` threw, or nil when it returned.
func providerError<T>(_ body: () async throws(ProviderError) -> T) async -> ProviderError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}
