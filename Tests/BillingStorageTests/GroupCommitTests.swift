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

    @Test func eachCallerKeepsItsOwnOutcomeInASharedCommit() async throws {
        let f = try await StoreFixture()
        try await f.store.pool.write { db in try db.execute(sql: "CREATE TABLE probe (x INTEGER PRIMARY KEY)") }
        let writer = f.store.writer
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for x in 0..<300 {
                group.addTask {
                    do {
                        try await writer.write { db in
                            try db.execute(sql: "INSERT INTO probe (x) VALUES (?)", arguments: [x])
                            // Every third caller fails after writing: its row must not stay.
                            if x % 3 == 0 { throw Refused() }
                            // A caller that breaks a constraint fails alone too.
                            if x % 3 == 1 && x % 5 == 0 {
                                try db.execute(sql: "INSERT INTO probe (x) VALUES (?)", arguments: [x])
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
        #expect(Set(outcomes.filter(\.value).keys) == expected)
        let stored = try await f.store.pool.read { db in try Int.fetchAll(db, sql: "SELECT x FROM probe") }
        #expect(Set(stored) == expected, "exactly the answered writes are in the file")
    }

    @Test func concurrentDecisionsKeepTheBooksAndTheEventLogWhole() async throws {
        let f = try await StoreFixture()
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
