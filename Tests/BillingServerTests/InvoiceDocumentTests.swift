import BillingAPI
import BillingCore
import BillingDocuments
import BillingMessages
import BillingRPC
import BillingTestSupport
import Foundation
import Testing

/// Invoices as documents: the PDF's text (read back with poppler's
/// pdftotext), the printable page, and both through the RPC and the CLI.
/// `INVOICE_SAMPLES=<dir>` keeps the rendered files to look at.
@Suite struct InvoiceDocumentTests {
    static let day: Int64 = 86_400_000

    static func document(state: PaymentStatus, payer: String = "Jürgen Müller-Łódź 東京") -> InvoiceDocument {
        let issued: Int64 = 1_795_000_000_000  // 2026-11-18
        var payment = Payment(
            id: "pay_0123456789abcdef",
            accountID: "acc-1",
            payerID: "pyr_1",
            purpose: .topUp,
            amount: Money(minorUnits: 1_234_50, .eur),
            status: state,
            optionKind: .invoice,
            system: nil,
            paymentMethodID: nil,
            savedPaymentMethodID: nil,
            providerReference: "",
            redirectURL: "",
            returnURL: "",
            invoiceNumber: "INV-2026-000042",
            failureReason: state == .cancelled ? "invoice INV-2026-000042 was not paid by its due date" : "",
            renewalOrderID: nil,
            migrationOrderID: nil,
            createdAtMs: issued,
            updatedAtMs: issued,
            finishedAtMs: state == .new ? nil : issued + 3 * day,
            nextCheckAtMs: nil,
            checkAttempts: 0
        )
        payment.nextCheckAtMs = state == .new ? issued + 21 * day : nil
        var issuer = InvoiceTerms.development.issuer
        issuer.name = "Example Hosting GmbH"
        issuer.legalText =
            String(repeating: "Registered at the local court, HRB 12345. ", count: 6) + "\nVAT is not charged."
        return InvoiceDocument(
            invoice: Invoice(
                number: "INV-2026-000042",
                series: "INV-2026-",
                sequence: 42,
                paymentID: payment.id,
                accountID: "acc-1",
                payerID: "pyr_1",
                payerName: payer,
                payerEmail: "juergen@example.com",
                description: "Balance top-up",
                amount: payment.amount,
                issuedAtMs: issued,
                dueAtMs: issued + 14 * day,
                issuer: issuer
            ),
            payment: payment
        )
    }

    /// pdftotext's reading of a PDF, in reading order.
    static func text(ofPDF bytes: [UInt8]) async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pdf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("invoice.pdf").path
        #expect(FileManager.default.createFile(atPath: file, contents: Data(bytes)))
        let outcome = await ChildProcess.run("/usr/bin/pdftotext", ["-layout", "-enc", "UTF-8", file, "-"])
        #expect(outcome.status == 0, "pdftotext (poppler-utils; deploy/setup installs it): \(outcome.errorText)")
        return outcome.outputText
    }

    static func keep(_ bytes: [UInt8], _ name: String) {
        guard let folder = ProcessInfo.processInfo.environment["INVOICE_SAMPLES"] else { return }
        _ = FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(bytes))
    }

    @Test func thePDFSaysEverythingAnInvoiceMust() async throws {
        let pdf = try InvoicePDF.render(Self.document(state: .new))
        Self.keep(pdf, "invoice-open.pdf")
        #expect(pdf.starts(with: Array("%PDF-".utf8)))
        let text = try await Self.text(ofPDF: pdf)
        for expected in [
            "INVOICE", "INV-2026-000042", "Example Hosting GmbH", "1 Example Street, Example City",
            "Jürgen Müller-Łódź 東京", "juergen@example.com", "Balance top-up", "1234.50 EUR", "2026-11-18",
            "2026-12-02", "open", "Please transfer 1234.50 EUR by 2026-12-02, quoting INV-2026-000042",
            "IBAN: XX00 0000 0000 0000 0000 00", "VAT is not charged.", "HRB 12345",
        ] {
            #expect(text.contains(expected), "\(expected) missing from:\n\(text)")
        }
        #expect(!text.contains("PAID") && !text.contains("VOID"))
    }

    @Test func paidAndVoidInvoicesSaySo() async throws {
        let paid = try InvoicePDF.render(Self.document(state: .paid))
        Self.keep(paid, "invoice-paid.pdf")
        let paidText = try await Self.text(ofPDF: paid)
        // The stamp is drawn at an angle (pdftotext reads its letters apart); the state says it too.
        #expect(paidText.contains("Paid on 2026-11-21") && paidText.contains("paid"), "\(paidText)")
        let void = try InvoicePDF.render(Self.document(state: .cancelled))
        Self.keep(void, "invoice-void.pdf")
        let voidText = try await Self.text(ofPDF: void)
        #expect(voidText.contains("void and need not be paid"), "\(voidText)")
    }

    /// The most a configuration and a payer may put on an invoice: every
    /// line wrapped inside the page, the rest on a second page, every script
    /// shaped (looked at as images: INVOICE_SAMPLES keeps them).
    @Test func aCrowdedInvoiceWrapsEveryLineAndFlowsOntoAnotherPage() async throws {
        var document = Self.document(
            state: .new,
            payer: "山田太郎 김민수 محمد عبدالله हिन्दी नाम ไทย Ελένη Жанна " + String(repeating: "Verylongname", count: 12)
        )
        document.invoice.issuer.lines = (0..<10).map {
            "issuer line \($0) " + String(repeating: "w", count: 180) + " end\($0)"
        }
        document.invoice.issuer.bankLines = (0..<10).map {
            "bank line \($0) " + String(repeating: "9", count: 180) + " end\($0)"
        }
        document.invoice.issuer.legalText = (0..<40).map { "legal line \($0) of the terms." }.joined(separator: "\n")
        document.invoice.payerEmail = String(repeating: "e", count: 150) + "@example.com"
        // A renewal of 100 services: a line each, over pages, the total after them all.
        document.invoice.description =
            (["Renewal, order ro_1:"]
            + (0..<100).map { "Web hosting example-\($0).com (svc-\($0)): 1 period until 2027-01-01, 9.99 USD" })
            .joined(separator: "\n")
        let pdf = try InvoicePDF.render(document)
        Self.keep(pdf, "invoice-crowded.pdf")
        let text = try await Self.text(ofPDF: pdf).replacingOccurrences(of: "\n", with: " ")
        for index in 0..<10 {
            #expect(text.contains("end\(index)"), "issuer or bank line \(index) cut off")
        }
        for index in 0..<40 { #expect(text.contains("legal line \(index) of the terms.")) }
        for index in 0..<100 { #expect(text.contains("(svc-\(index)):"), "service \(index) missing") }
        #expect(text.contains("Total") && text.contains("Invoice INV-2026-000042, page 2"))
        #expect(!text.contains("eeee-"), "no hyphen added where a word is broken")
        #expect(text.contains("INV-2026-000042") && text.contains("2026-12-02") && text.contains("1234.50 EUR"))
        let pages = text.components(separatedBy: "\u{0C}").count - 1
        #expect(pages >= 2, "\(pages) pages")
    }

    @Test func thePrintablePageEscapesWhatCameFromOutside() throws {
        let html = InvoiceHTML.render(Self.document(state: .new, payer: "<script>alert(1)</script>\"\u{338} & Co"))
        Self.keep(Array(html.utf8), "invoice-open.html")
        // Compared without the combining mark, which joins the character before it.
        let scalars = String(String.UnicodeScalarView(html.unicodeScalars.filter { $0 != "\u{338}" }))
        #expect(scalars.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot; &amp; Co"))
        #expect(!html.contains("<script"))
        #expect(html.contains("INV-2026-000042") && html.contains("1234.50 EUR") && html.contains("@page { size: A4"))
    }
}

extension InvoiceDocumentTests {
    @Test func anInvoiceThroughTheRPCAndTheCommandLine() async throws {
        let f = try await ServerFixture { configuration in
            configuration.invoices.issuer.name = "Hosting Test Ltd"
            configuration.invoices.issuer.bankLines = ["Test Bank", "IBAN TE00 1234"]
            configuration.invoices.numberPrefix = "HT-"
        }
        let (account, payer) = try await f.account("acc-inv")
        let client = try f.clients(try f.accountCertificate(account.id))
        let created = try await client.balance.createTopUp(
            topUpRequest(account: account.id, payer: payer.id, minor: 99_00, option: .invoice)
        )
        let number = try #require(created.payment?.invoiceNumber)
        #expect(number.hasPrefix("HT-20") && number.hasSuffix("-000001"), "\(number)")
        var get = BillingV1.GetInvoiceRequest()
        get.invoice = number
        let plain = try await client.balance.getInvoice(get)
        #expect(plain.invoice?.state == .open && plain.invoice?.issuerName == "Hosting Test Ltd")
        #expect(plain.invoice?.payerName == payer.displayName && plain.invoice?.amount?.amountMinorUnits == 99_00)
        #expect(plain.content.isEmpty && plain.contentType.isEmpty)
        get.format = .pdf
        let pdf = try await client.balance.getInvoice(get)
        #expect(pdf.contentType == "application/pdf")
        let text = try await Self.text(ofPDF: pdf.content)
        #expect(text.contains(number) && text.contains("99.00 USD") && text.contains("Hosting Test Ltd"), "\(text)")
        // By payment id too; another account's certificate finds nothing.
        get.invoice = created.payment!.id
        get.format = .html
        #expect(String(decoding: try await client.balance.getInvoice(get).content, as: UTF8.self).contains(number))
        let (other, _) = try await f.account("acc-inv-other")
        let stranger = try f.clients(try f.accountCertificate(other.id))
        get.invoice = number
        // Answered as for a number that does not exist: nothing to learn by guessing.
        var unknown = get
        unknown.invoice = "HT-2000-000001"
        for request in [get, unknown] {
            do {
                _ = try await stranger.balance.getInvoice(request)
                Issue.record("another account's invoice was shown")
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied, "\(error)")
                #expect(error.message == "invoice \(request.invoice) is not one of account \(other.id)")
            }
        }

        // The CLI: show, download, refuse to overwrite, write to standard output.
        let shown = try await f.billing(["invoice", "show", number, "--json"])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(try json(shown.stdout)["state"] as? String == "open")
        #expect(try json(shown.stdout)["void_at_unix_ms"] as? Int ?? 0 > 0)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("inv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/invoice.pdf"
        let saved = try await f.billing(["invoice", "download", number, "--output", file])
        #expect(saved.status == 0 && saved.stdout.contains("written to \(file)"), "\(saved.stderr)")
        let written = try #require(FileManager.default.contents(atPath: file))
        #expect(try await Self.text(ofPDF: Array(written)).contains(number))
        let again = try await f.billing(["invoice", "download", number, "--output", file])
        #expect(again.status == 64 && again.stderr.contains("--force"), "\(again.stderr)")
        let page = try await f.billing([
            "invoice", "download", created.payment!.id, "--format", "html", "--output", "-",
        ])
        #expect(page.status == 0 && page.stdout.hasPrefix("<!DOCTYPE html>"))
        let missing = try await f.billing(["invoice", "show", "HT-2026-999999"])
        #expect(missing.status == 65 && missing.stderr.contains("not found"), "\(missing.stderr)")
        let bad = try await f.billing(["invoice", "download", number, "--format", "docx"])
        #expect(bad.status == 64)
        let unwritable = try await f.billing([
            "invoice", "download", number, "--format", "PDF", "--output", folder + "/no/such/x.pdf",
        ])
        #expect(unwritable.status == 73 && unwritable.stderr.contains("cannot write"), "\(unwritable.stderr)")
        await f.stop()
    }
}
