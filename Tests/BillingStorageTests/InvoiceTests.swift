import BillingCore
import BillingStorage
import Foundation
import GRDB
import Testing

/// Invoices as documents in storage: a gap-free series per issuer, never
/// reused, yearly reset, the issuer's details kept as issued, append-only,
/// and the state following the payment.
@Suite struct InvoiceTests {
    @Test(arguments: Backend.allCases)
    func numbersRunWithoutGapsAndARefusalTakesNone(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let first = try await f.topUp("10", .invoice)
        // Refused inside the transaction that would take a number: above the top-up limit.
        await #expect(throws: BillingError.self) { try await f.topUp("15000.01", .invoice) }
        // Refused by a decision after the number was read: a renewal whose total moved.
        let service = try await f.service("svc", price: "10", name: "VPS")
        await #expect(throws: BillingError.self) {
            try await f.store.renew(
                accountID: f.account.id,
                payerID: f.payer.id,
                items: [RenewalItem(serviceID: service.id, periods: 1)],
                option: .invoice,
                expectedTotal: try f.usd("9"),
                expectedToPay: nil,
                idempotencyKey: nil
            )
        }
        let second = try await f.topUp("20", .invoice)
        // A replay of a keyed request takes no second number.
        let keyed = try await f.topUp("30", .invoice, key: "k-1")
        let replayed = try await f.topUp("30", .invoice, key: "k-1")
        #expect(
            [first, second, keyed, replayed].map { $0.invoiceNumber ?? "" } == [
                "INV-2027-000001", "INV-2027-000002", "INV-2027-000003", "INV-2027-000003",
            ]
        )
        // Other options take no number.
        _ = try await f.topUp("5")
        #expect(try await f.topUp("40", .invoice).invoiceNumber == "INV-2027-000004")
    }

    @Test(arguments: Backend.allCases)
    func anOrdersInvoiceSaysWhatWasSoldAndWhatTheBalancePaid(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        let topUp = try await f.topUp("4")
        _ = try await f.store.transition(paymentID: topUp.id, .paid)
        _ = try await f.service("svc-mail", price: "5", name: "Mail box")
        let (_, payment) = try await f.store.renew(
            accountID: f.account.id,
            payerID: f.payer.id,
            items: [RenewalItem(serviceID: "svc-mail", periods: 2)],
            option: .invoice,
            expectedTotal: nil,
            expectedToPay: nil,
            idempotencyKey: nil
        )
        let invoice = try await f.store.invoiceDocument(try #require(payment).id).invoice
        #expect(invoice.amount == (try f.usd("6")))
        #expect(invoice.description.contains("Mail box (svc-mail): 2 periods until"), "\(invoice.description)")
        #expect(invoice.description.contains("\nTotal 10.00 USD, of which 4.00 USD from the balance"))
        let order = try await f.store.createMigrationOrder(
            accountID: f.account.id,
            externalID: "mig-7",
            description: "VPS 8 GB in Frankfurt",
            serverPrice: try f.usd("30")
        )
        let (_, migration) = try await f.store.payMigrationOrder(order.id, payerID: f.payer.id, option: .invoice)
        let server = try await f.store.invoiceDocument(try #require(migration).id).invoice
        #expect(server.description.contains("VPS 8 GB in Frankfurt") && server.description.contains("mig-7"))
    }

    @Test(arguments: Backend.allCases)
    func theSeriesStartsAgainEachYearAndAPlainSeriesNever(_ backend: Backend) async throws {
        let f = try await StoreFixture(backend)
        // 2027-01-15: the clock's start; then into 2028.
        #expect(try await f.topUp("10", .invoice).invoiceNumber == "INV-2027-000001")
        f.clock.advance(by: .seconds(365 * 86_400))
        #expect(try await f.topUp("10", .invoice).invoiceNumber == "INV-2028-000001")
        #expect(try await f.topUp("10", .invoice).invoiceNumber == "INV-2028-000002")

        var terms = InvoiceTerms.development
        terms.numberPrefix = "HB-"
        terms.yearlyReset = false
        let plain = try await StoreFixture(backend, invoices: terms)
        #expect(try await plain.topUp("10", .invoice).invoiceNumber == "HB-000001")
        plain.clock.advance(by: .seconds(365 * 86_400))
        #expect(try await plain.topUp("10", .invoice).invoiceNumber == "HB-000002")
    }

    @Test(arguments: Backend.allCases)
    func aDocumentKeepsWhatWasIssuedAndFollowsItsPayment(_ backend: Backend) async throws {
        var terms = InvoiceTerms.development
        terms.issuer.name = "Hosting Ltd"
        let f = try await StoreFixture(backend, invoices: terms)
        let payment = try await f.topUp("12.50", .invoice)
        let number = try #require(payment.invoiceNumber)
        let open = try await f.store.invoiceDocument(number)
        #expect(open.state == .open && open.invoice.paymentID == payment.id)
        #expect(open.invoice.payerName == f.payer.displayName && open.invoice.payerEmail == f.payer.email)
        #expect(try open.invoice.issuer.name == "Hosting Ltd" && open.invoice.amount == f.usd("12.50"))
        #expect(open.invoice.dueAtMs == payment.createdAtMs + 14 * 86_400_000)
        #expect(try await f.store.invoiceDocument(payment.id).invoice.number == number, "by payment id too")
        _ = try await f.store.transition(paymentID: payment.id, .paid)
        #expect(try await f.store.invoiceDocument(number).state == .paid)
        let voided = try await f.topUp("3", .invoice)
        _ = try await f.store.transition(paymentID: voided.id, .cancelled("duplicate"))
        #expect(try await f.store.invoiceDocument(voided.id).state == .void)
        await #expect(throws: BillingError.notFound("invoice INV-2027-999999 not found")) {
            try await f.store.invoiceDocument("INV-2027-999999")
        }

        // Issued invoices are append-only, and a number is never taken twice.
        let queue = try DatabaseQueue(path: f.directory.appendingPathComponent("billing.sqlite").path)
        try await queue.write { db in
            #expect(throws: (any Error).self) {
                try db.execute(sql: "UPDATE invoices SET amount_minor = 1 WHERE number = ?", arguments: [number])
            }
            #expect(throws: (any Error).self) {
                try db.execute(sql: "DELETE FROM invoices WHERE number = ?", arguments: [number])
            }
            #expect(throws: (any Error).self) {
                try db.execute(
                    sql: """
                        INSERT INTO invoices (number, series, sequence, payment_id, account_id, payer_id, payer_name, payer_email,
                            description, amount_minor, currency, issued_at_ms, due_at_ms, issuer)
                        SELECT 'X-1', series, sequence, payment_id, account_id, payer_id, payer_name, payer_email,
                            description, amount_minor, currency, issued_at_ms, due_at_ms, issuer FROM invoices WHERE number = ?
                        """,
                    arguments: [number]
                )
            }
        }
    }
}
