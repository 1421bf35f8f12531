import BillingCore
import Foundation
import GRDB
import Testing

@testable import BillingStorage

/// Group commit: callers that share a commit are answered with their own
/// results, a caller that fails takes only its own writes with it, and
/// everything answered is in the file.
@Suite struct GroupCommitTests {
    struct Refused: Error {}

    @Test(arguments: Backend.allCases)
    func eachCallerKeepsItsOwnOutcomeInASharedCommit(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        _ = try await f.store.write { db in try db.execute("CREATE TABLE probe (x BIGINT PRIMARY KEY)") }
        let store = f.store
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for x in 0..<300 {
                group.addTask {
                    do {
                        try await store.write { db in
                            try db.execute("INSERT INTO probe (x) VALUES (?)", [x])
                            // Every third caller fails after writing: its row must not stay.
                            if x % 3 == 0 { throw Refused() }
                            // A caller that breaks a constraint fails alone too.
                            if x % 3 == 1 && x % 5 == 0 {
                                try db.execute("INSERT INTO probe (x) VALUES (?)", [x])
                            }
                        }
                        return (x, true)
                    } catch {
                        return (x, false)
                    }
                }
            }
            var outcomes: [Int: Bool] = [:]
            for try await (x, ok) in group { outcomes[x] = ok }
            return outcomes
        }
        let expected = Set((0..<300).filter { $0 % 3 != 0 && !($0 % 3 == 1 && $0 % 5 == 0) })
        #expect(Set(outcomes.filter { $0.value }.keys) == expected)
        let stored = try await f.store.read { db in try db.values(Int.self, "SELECT x FROM probe") }
        #expect(Set(stored) == expected, "exactly the answered writes are in the file")
    }

    @Test(arguments: Backend.allCases)
    func concurrentDecisionsKeepTheBooksAndTheEventLogWhole(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        var payments: [Payment] = []
        for _ in 0..<60 { payments.append(try await f.topUp("1.00", .invoice)) }
        let ids = payments.map(\.id)
        // Each payment paid twice at once and one unknown id among them: every
        // payment credits once, the unknown one fails alone.
        let results = await withTaskGroup(of: Bool.self) { group in
            for id in ids + ids + ["pay_unknown"] {
                group.addTask { (try? await f.store.transition(paymentID: id, .paid)) != nil }
            }
            var results: [Bool] = []
            for await result in group { results.append(result) }
            return results
        }
        #expect(results.filter { !$0 }.count == 1, "only the unknown payment failed")
        #expect(try await f.balanceMinor() == 60 * 100)
        #expect(try await f.checkInvariants() == [])
        let (_, problems) = try await f.store.checkStorage()
        #expect(problems == [])
    }
}
