/// What a store reports of its transactions, for metrics: each one's kind,
/// time and result, and the effects of each committed decision. Called on
/// the store's threads after the transaction ended; an implementation
/// records and returns at once.
public struct StoreObserver: Sendable {
    public enum Kind: String, Sendable {
        case read, write
    }

    /// A transaction ended: committed (or read) when `succeeded`, else rolled back.
    public var transactionEnded: @Sendable (_ kind: Kind, _ duration: Duration, _ succeeded: Bool) -> Void
    /// A decision's effects, once they are committed.
    public var committed: @Sendable (_ effects: [Effect]) -> Void
    /// Due payments a poller looked at but another claimed first.
    public var claimConflicts: @Sendable (_ count: Int) -> Void

    public init(
        transactionEnded: @escaping @Sendable (_ kind: Kind, _ duration: Duration, _ succeeded: Bool) -> Void,
        committed: @escaping @Sendable (_ effects: [Effect]) -> Void,
        claimConflicts: @escaping @Sendable (_ count: Int) -> Void
    ) {
        self.transactionEnded = transactionEnded
        self.committed = committed
        self.claimConflicts = claimConflicts
    }
}
