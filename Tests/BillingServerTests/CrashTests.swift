import Foundation
import Testing

/// The whole-process crash test, short: billingd SIGKILLed and restarted 5
/// times under mixed load, then its books checked (`billing-bench crash`;
/// docs/RELIABILITY.md has the 100-kill figures). Nothing here depends on
/// timing: whenever the kills land, every invariant must hold.
@Suite struct CrashTests {
    @Test func fiveKillsUnderMixedLoadLeaveTheBooksRight() async throws {
        let bench = try #require(Executable.path("billing-bench"), "billing-bench must be built")
        let seed = UInt64.random(in: 0...UInt64.max)
        let result = await Executable.run(bench, ["crash", "5", "\(seed)"])
        #expect(result.status == 0, "seed \(seed):\n\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("all invariants hold"), "seed \(seed):\n\(result.stdout)")
    }

    /// Three billingd instances on one PostgreSQL, one of them SIGKILLed and
    /// restarted 6 times under mixed load spread over all three (`billing-bench
    /// cluster`): the books, every instance's watchers and the pollers' checks
    /// (never two at once on one payment) are checked.
    @Test func threeInstancesOnPostgreSQLWithKillsLeaveTheBooksRight() async throws {
        let bench = try #require(Executable.path("billing-bench"), "billing-bench must be built")
        let seed = UInt64.random(in: 0...UInt64.max)
        let result = await Executable.run(bench, ["cluster", "6", "\(seed)"])
        #expect(result.status == 0, "seed \(seed):\n\(result.stdout)\(result.stderr.suffix(4000))")
        #expect(result.stdout.contains("all invariants hold"), "seed \(seed):\n\(result.stdout)")
    }
}
