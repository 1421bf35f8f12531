import BillingAPI
import BillingMessages
import BillingRPC
import Testing

/// Every call is authorized: an account-scoped client reaches nothing of
/// another account, whatever id it guesses.
@Suite struct AuthorizationTests {
    func expectDenied(_ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what) was allowed")
        } catch let error as RPCError {
            #expect(error.code == .permissionDenied, "\(what): \(error)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    @Test func anAccountClientCannotReadPayOrWatchAnotherAccount() async throws {
        let f = try await ServerFixture()
        let (mine, myPayer) = try await f.account("acc-mine")
        let (theirs, theirPayer) = try await f.account("acc-theirs")
        let me = try f.clients(try f.accountCertificate(mine.id))
        let them = try f.clients(try f.accountCertificate(theirs.id))

        let theirPayment = try await them.balance.createTopUp(
            topUpRequest(account: theirs.id, payer: theirPayer.id, minor: 10_00, option: .invoice)
        ).payment!

        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = theirs.id
        await expectDenied("GetBalance") { _ = try await me.balance.getBalance(balance) }
        var get = BillingV1.GetPaymentRequest()
        get.paymentId = theirPayment.id
        await expectDenied("GetPayment") { _ = try await me.balance.getPayment(get) }
        var cancel = BillingV1.CancelPaymentRequest()
        cancel.paymentId = theirPayment.id
        await expectDenied("CancelPayment") { _ = try await me.balance.cancelPayment(cancel) }
        await expectDenied("CreateTopUp for them") {
            _ = try await me.balance.createTopUp(
                topUpRequest(account: theirs.id, payer: theirPayer.id, minor: 10_00, option: .invoice)
            )
        }
        await expectDenied("CreateTopUp with their payer") {
            _ = try await me.balance.createTopUp(
                topUpRequest(account: mine.id, payer: theirPayer.id, minor: 10_00, option: .invoice)
            )
        }
        var list = BillingV1.ListPaymentsRequest()
        list.accountId = theirs.id
        await expectDenied("ListPayments") { _ = try await me.balance.listPayments(list) }
        var payers = BillingV1.ListPayersRequest()
        payers.accountId = theirs.id
        await expectDenied("ListPayers") { _ = try await me.methods.listPayers(payers) }
        var methods = BillingV1.ListPaymentMethodsRequest()
        methods.payerId = theirPayer.id
        await expectDenied("ListPaymentMethods") { _ = try await me.methods.listPaymentMethods(methods) }
        var watch = BillingV1.WatchPaymentsRequest()
        watch.accountId = theirs.id
        await expectDenied("WatchPayments") {
            for try await _ in try await me.balance.watchPayments(watch) {}
        }
        await expectDenied("WatchAllPayments") {
            for try await _ in try await me.balance.watchAllPayments(BillingV1.WatchAllPaymentsRequest()) {}
        }
        var settle = BillingV1.SettleInvoiceRequest()
        settle.paymentId = theirPayment.id
        await expectDenied("SettleInvoice") { _ = try await me.balance.settleInvoice(settle) }
        var createAccount = BillingV1.CreateAccountRequest()
        createAccount.accountId = "acc-new"
        createAccount.displayName = "New"
        await expectDenied("CreateAccount") { _ = try await me.accounts.createAccount(createAccount) }
        var order = BillingV1.CreateMigrationOrderRequest()
        order.accountId = mine.id
        order.externalId = "m1"
        order.serverPrice = .usd(10_00)
        await expectDenied("CreateMigrationOrder") { _ = try await me.migration.createMigrationOrder(order) }

        // Their own account works, and they saw nothing of the attempts.
        var mineBalance = BillingV1.GetBalanceRequest()
        mineBalance.accountId = mine.id
        #expect(try await me.balance.getBalance(mineBalance).balance?.amountMinorUnits == 0)
        _ = myPayer
        await f.stop()
    }

    @Test func operatorsReadButDoNotSpend() async throws {
        let f = try await ServerFixture()
        let (account, payer) = try await f.account("acc-op")
        let op = try f.clients("operator")
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = account.id
        #expect(try await op.balance.getBalance(balance).balance?.amountMinorUnits == 0)
        await expectDenied("operator CreateTopUp") {
            _ = try await op.balance.createTopUp(
                topUpRequest(account: account.id, payer: payer.id, minor: 10_00, option: .invoice)
            )
        }
        await f.stop()
    }

    @Test func aCertificateWhoseURIHoldsANewlineGetsNoRole() async throws {
        let f = try await ServerFixture()
        // Signed by the deployment's CA: only the URI rule stands between it and `internal`.
        let crafted = try f.certificate("crafted", uris: ["https://x.example/\nbilling://internal/evil"])
        let twoRoles = try f.certificate("two-roles", uris: ["billing://operator/alice", "billing://internal/evil"])
        for name in [crafted, twoRoles] {
            let client = try f.clients(name)
            var create = BillingV1.CreateAccountRequest()
            create.accountId = "acc-\(name)"
            create.displayName = "Evil"
            await expectDenied("CreateAccount as \(name)") { _ = try await client.accounts.createAccount(create) }
            var get = BillingV1.GetAccountRequest()
            get.accountId = "acc-\(name)"
            do {
                _ = try await f.clients("internal").accounts.getAccount(get)
                Issue.record("the account was created by \(name)")
            } catch let error as RPCError {
                #expect(error.code == .notFound)
            }
        }
        await f.stop()
    }

    /// What an account client hears for another account's id and for an id
    /// that does not exist, with the id itself taken out of the message.
    func refusal(_ id: String, _ body: () async throws -> Void) async -> String {
        do {
            try await body()
            return "allowed"
        } catch let error as RPCError {
            return "\(error.code) \(error.message.replacingOccurrences(of: id, with: "ID"))"
        } catch {
            return "\(error)"
        }
    }

    @Test func anotherAccountsIdsLookExactlyLikeIdsThatDoNotExist() async throws {
        let f = try await ServerFixture()
        let (mine, myPayer) = try await f.account("acc-own")
        let (theirs, theirPayer) = try await f.account("acc-other")
        let me = try f.clients(try f.accountCertificate(mine.id))
        let them = try f.clients("internal")
        let theirPayment = try await them.balance.createTopUp(
            topUpRequest(account: theirs.id, payer: theirPayer.id, minor: 10_00, option: .invoice)
        ).payment!
        var order = BillingV1.CreateMigrationOrderRequest()
        order.accountId = theirs.id
        order.externalId = "m-1"
        order.serverPrice = .usd(10_00)
        let theirOrder = try await them.migration.createMigrationOrder(order)

        let probes: [(String, String, (String) async throws -> Void)] = [
            (
                "GetPayment", theirPayment.id,
                { id in
                    var request = BillingV1.GetPaymentRequest()
                    request.paymentId = id
                    _ = try await me.balance.getPayment(request)
                }
            ),
            (
                "CancelPayment", theirPayment.id,
                { id in
                    var request = BillingV1.CancelPaymentRequest()
                    request.paymentId = id
                    _ = try await me.balance.cancelPayment(request)
                }
            ),
            (
                "ListPayments payer filter", theirPayer.id,
                { id in
                    var request = BillingV1.ListPaymentsRequest()
                    request.accountId = mine.id
                    request.payerId = id
                    _ = try await me.balance.listPayments(request)
                }
            ),
            (
                "CreateTopUp payer", theirPayer.id,
                { id in
                    _ = try await me.balance.createTopUp(
                        topUpRequest(account: mine.id, payer: id, minor: 10_00, option: .invoice)
                    )
                }
            ),
            (
                "ListPaymentMethods", theirPayer.id,
                { id in
                    var request = BillingV1.ListPaymentMethodsRequest()
                    request.payerId = id
                    _ = try await me.methods.listPaymentMethods(request)
                }
            ),
            (
                "GetMigrationOrder", theirOrder.id,
                { id in
                    var request = BillingV1.GetMigrationOrderRequest()
                    request.orderId = id
                    _ = try await me.migration.getMigrationOrder(request)
                }
            ),
        ]
        for (what, theirID, probe) in probes {
            let unknownID = theirID + "x"
            let forTheirs = await refusal(theirID) { try await probe(theirID) }
            let forUnknown = await refusal(unknownID) { try await probe(unknownID) }
            #expect(forTheirs.hasPrefix("PERMISSION_DENIED"), "\(what): \(forTheirs)")
            #expect(forTheirs == forUnknown, "\(what): another account's id and an unknown one must look alike")
        }
        _ = myPayer
        await f.stop()
    }

    @Test func anAccountsSequencesCountNothingOfOtherAccounts() async throws {
        let f = try await ServerFixture()
        let (mine, myPayer) = try await f.account("acc-quiet")
        let (busy, busyPayer) = try await f.account("acc-loud")
        let me = try f.clients(try f.accountCertificate(mine.id))
        let internalClient = try f.clients("internal")
        var balance = BillingV1.GetBalanceRequest()
        balance.accountId = mine.id
        let before = try await me.balance.getBalance(balance).asOfSequence
        for _ in 0..<3 {
            _ = try await internalClient.balance.createTopUp(
                topUpRequest(account: busy.id, payer: busyPayer.id, minor: 10_00, option: .invoice)
            )
        }
        #expect(
            try await me.balance.getBalance(balance).asOfSequence == before,
            "another account's payments do not move it"
        )
        _ = try await me.balance.createTopUp(
            topUpRequest(account: mine.id, payer: myPayer.id, minor: 10_00, option: .invoice)
        )
        _ = try await internalClient.balance.createTopUp(
            topUpRequest(account: busy.id, payer: busyPayer.id, minor: 10_00, option: .invoice)
        )
        _ = try await me.balance.createTopUp(
            topUpRequest(account: mine.id, payer: myPayer.id, minor: 20_00, option: .invoice)
        )
        let after = try await me.balance.getBalance(balance).asOfSequence
        #expect(after == before + 2, "two events of its own")
        // The account's watch numbers its own events 1, 2, 3, … with no gaps.
        var watch = BillingV1.WatchPaymentsRequest()
        watch.accountId = mine.id
        var sequences: [UInt64] = []
        for try await event in try await me.balance.watchPayments(watch) {
            sequences.append(event.sequence)
            if event.sequence == after { break }
        }
        #expect(sequences == Array(1...after))
        await f.stop()
    }
}
