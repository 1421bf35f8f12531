internal import BillingAPI
internal import BillingMessages
internal import Hummingbird

/// An invoice of the signed-in account as billingd renders it: the PDF to
/// save, or the printable page. The panel calls billingd as an internal
/// service, so it checks the account itself: another account's invoice
/// reads as one that does not exist.
extension Panel {
    func invoice(_ context: SignedIn, _ request: Request, file: String) async throws -> Response {
        let isPDF = file.hasSuffix(".pdf")
        // The invoice's number or its payment's id (the history links by payment).
        let name = String(file.dropLast(isPDF ? 4 : 5))
        guard isPDF || file.hasSuffix(".html"), Self.isID(name) else { return try await noInvoice(context, file) }
        var get = BillingV1.GetInvoiceRequest()
        get.invoice = name
        get.format = isPDF ? .pdf : .html
        let document: BillingV1.InvoiceDocument
        do {
            document = try await billingd.balance.getInvoice(get, options: billingd.options)
        } catch {
            let problem = Problem(error)
            guard problem.status == 404 else { throw problem }
            return try await noInvoice(context, file, payment: name)
        }
        guard let invoice = document.invoice, invoice.accountId == context.account,
            invoice.number == name || invoice.paymentId == name
        else {
            return try await noInvoice(context, file)
        }
        var headers = context.visit.setCookie
        headers[.contentType] = document.contentType
        if isPDF {
            headers[.contentDisposition] = "attachment; filename=\"\(invoice.number).pdf\""
        } else {
            // billingd's page carries its own style inline and no script.
            headers[.contentSecurityPolicy] =
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
        }
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: document.content))
        )
    }

    /// 404; for an invoice payment of this account made before billingd
    /// issued invoice documents, the page says so.
    private func noInvoice(_ context: SignedIn, _ file: String, payment name: String? = nil) async throws -> Response {
        var message = "This account has no invoice \(file.prefix(80))."
        if let name {
            var get = BillingV1.GetPaymentRequest()
            get.paymentId = name
            if let payment = try? await billingd.balance.getPayment(get, options: billingd.options),
                payment.accountId == context.account, payment.optionKind == .invoice
            {
                message =
                    "Invoice \(payment.invoiceNumber) was issued before billingd made invoice documents: there is no PDF or printable page of it."
            }
        }
        return await page(
            context,
            title: "No such invoice",
            tab: nil,
            body: HTML.alert(message) + "<p><a href=\"/history\">Back to the payment history</a></p>",
            status: .notFound
        )
    }
}
