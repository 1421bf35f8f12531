internal import Synchronization

/// A credential that may be replaced while billingd runs (a reload on
/// SIGHUP after the operator rotated it): every request reads the current
/// one. Never logged, never part of a description.
public final class Secret: Sendable, CustomStringConvertible {
    private let current: Mutex<String>

    public init(_ value: String) {
        current = Mutex(value)
    }

    public var value: String {
        current.withLock { $0 }
    }

    /// True when the value changed.
    @discardableResult
    public func replace(with value: String) -> Bool {
        current.withLock { current in
            guard current != value else { return false }
            current = value
            return true
        }
    }

    public var description: String { "<secret>" }
}
