/// Instants that come from outside (a service's expiry, a history filter) as
/// Unix milliseconds, and the arithmetic done on them.
///
/// Every instant billingd accepts lies in 2000-01-01 … 9999-12-31 UTC: wide
/// enough for any real date a hosting panel deals in, and far enough from
/// `Int64.max` (year 292 million) that adding renewal periods to a stored
/// value cannot overflow. The arithmetic is checked anyway, so that a row
/// written by an older version or by hand is an error for the call that
/// reads it, never a trap of the process.
public enum Timestamps {
    /// 2000-01-01T00:00:00Z.
    public static let earliestMs: Int64 = 946_684_800_000
    /// 9999-12-31T23:59:59.999Z.
    public static let latestMs: Int64 = 253_402_300_799_999
    public static let dayMs: Int64 = 86_400_000

    public static func check(_ ms: Int64, _ what: String) throws(BillingError) {
        guard (earliestMs...latestMs).contains(ms) else {
            throw .invalidArgument(
                "\(what) must be a time between the years 2000 and 9999 (Unix milliseconds), not \(ms)"
            )
        }
    }

    /// `ms` plus `days` whole days, or an error past the year 9999.
    public static func adding(days: Int64, to ms: Int64, _ what: String) throws(BillingError) -> Int64 {
        let (span, spanOverflow) = days.multipliedReportingOverflow(by: dayMs)
        let (sum, sumOverflow) = ms.addingReportingOverflow(span)
        guard !spanOverflow, !sumOverflow, (earliestMs...latestMs).contains(sum) else {
            throw .failedPrecondition("\(what) would end after the year 9999")
        }
        return sum
    }
}
