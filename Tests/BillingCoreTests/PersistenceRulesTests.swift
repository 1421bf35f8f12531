import BillingCore
import Testing

/// Rules a store used to apply in SQL, now decided here for every backend.
@Suite struct PersistenceRulesTests {
    @Test func reversalHistoryCountsWhatWasTakenAndWhatChargebacksStillHold() throws {
        let entries: [(key: String, minorUnits: Int64)] = [
            (key: "reversal:stripe:refund:re_1", minorUnits: -10_00),
            (key: "reversal:stripe:chargeback:dp_1", minorUnits: -50_00),
            (key: "reversal:stripe:chargeback_won:dp_1", minorUnits: 20_00),
            // A reference holding colons and the word: still a refund.
            (key: "reversal:paypal:refund:x:chargeback:y", minorUnits: -1_00),
        ]
        let history = try Reversals.History(recorded: true, entries: entries)
        #expect(history.recorded)
        #expect(history.takenMinorUnits == 41_00)
        #expect(history.chargedBackMinorUnits == 30_00)
        let none = try Reversals.History(recorded: false, entries: [])
        #expect(!none.recorded && none.takenMinorUnits == 0 && none.chargedBackMinorUnits == 0)
        // Damaged amounts are an error for the call, not a trap.
        #expect(throws: BillingError.self) {
            try Reversals.History(recorded: false, entries: [(key: "reversal:stripe:refund:a", minorUnits: .min)])
        }
        #expect(throws: BillingError.self) {
            try Reversals.History(
                recorded: false,
                entries: [
                    (key: "reversal:stripe:refund:a", minorUnits: .max),
                    (key: "reversal:stripe:refund:b", minorUnits: 1),
                ]
            )
        }
    }

    @Test func aStripeCustomerComesFromTheRecordOrTheNewestSavedCard() {
        #expect(SavedMethods.customer(recorded: "cus_A", methodReferences: ["cus_B/pm_1"], system: .stripe) == "cus_A")
        #expect(
            SavedMethods.customer(
                recorded: nil,
                methodReferences: ["pm_only", "cus_B/pm_1", "cus_C/pm_2"],
                system: .stripe
            ) == "cus_B"
        )
        #expect(
            SavedMethods.customer(recorded: nil, methodReferences: ["cusXB/pm_1", "cus_B/", "a/b/c"], system: .stripe)
                == nil
        )
        #expect(SavedMethods.customer(recorded: nil, methodReferences: ["cus_B/pm_1"], system: .paypal) == nil)
    }

    @Test func aTopUpIsNeverPaidFromTheBalanceAndPagesAreBounded() {
        let request = TopUpRequest(accountID: "a", payerID: "p", amount: Money(minorUnits: 1, .usd), option: .balance)
        #expect(throws: BillingError.invalidArgument("a top-up cannot be paid from the balance")) {
            try request.validate()
        }
        #expect(throws: BillingError.self) { try Paging.checkPageSize(0) }
        #expect(throws: BillingError.self) { try Paging.checkPageSize(201) }
        #expect(throws: Never.self) { try Paging.checkPageSize(200) }
        #expect(throws: BillingError.self) { try Paging.checkEventBatch(10_001) }
    }
}
