/// What a server reports of its calls and connections, for metrics. Called
/// on the server's event loops: an implementation records and returns at
/// once (counters, histograms), never waits.
public protocol ServerCallObserver: Sendable {
    /// A call ended with `code` after `duration` (from its Request to its
    /// final frame). `method` is nil when the Request named no registered
    /// method or was refused before it was routed: names from the wire are
    /// not labels.
    func callEnded(_ method: MethodDescriptor?, code: StatusCode, duration: Duration)
}
