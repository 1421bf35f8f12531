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

    /// The UTC calendar day of `ms` as "2026-11-28" (days from the civil
    /// calendar; any Int64 gives an answer, years outside 0…9999 padded as
    /// they come).
    public static func day(_ ms: Int64) -> String {
        let (year, month, day) = civil(ms)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let y = String(year)
        return String(repeating: "0", count: max(0, 4 - y.count)) + y + "-" + two(month) + "-" + two(day)
    }

    /// "2026-11-28 09:30 UTC": a day and a time of day, for people.
    public static func minute(_ ms: Int64) -> String {
        let inDay = ms % dayMs < 0 ? ms % dayMs + dayMs : ms % dayMs
        let hours = inDay / 3_600_000
        let minutes = inDay % 3_600_000 / 60_000
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(day(ms)) \(two(hours)):\(two(minutes)) UTC"
    }

    /// Year, month (1…12) and day (1…31) of `ms` in UTC (Howard Hinnant's
    /// days-to-civil algorithm).
    public static func civil(_ ms: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let days = ms / dayMs - (ms % dayMs < 0 ? 1 : 0)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
