public import BillingCore
internal import CCairo

/// An invoice as a PDF, drawn with cairo: the PDF back end of GTK,
/// Inkscape and Firefox's printing, maintained by freedesktop.org and in
/// every Debian. It embeds the subset of the font it uses (DejaVu Sans,
/// found by fontconfig), so a payer's name in any script prints and the
/// text can be searched and copied; no browser, no second process.
public enum InvoicePDF {
    public enum Failure: Error, CustomStringConvertible {
        case cairo(String)
        public var description: String {
            switch self {
            case .cairo(let why): return "rendering the invoice PDF failed: \(why)"
            }
        }
    }

    /// A4 in points.
    static let width = 595.28
    static let height = 841.89
    static let margin = 56.0

    public static func render(_ document: InvoiceDocument) throws(Failure) -> [UInt8] {
        let text = InvoiceText(document)
        let sink = Sink()
        let surface = cairo_pdf_surface_create_for_stream(
            { closure, data, length in
                guard let closure, let data else { return CAIRO_STATUS_WRITE_ERROR }
                Unmanaged<Sink>.fromOpaque(closure).takeUnretainedValue().bytes
                    .append(contentsOf: UnsafeBufferPointer(start: data, count: Int(length)))
                return CAIRO_STATUS_SUCCESS
            },
            Unmanaged.passUnretained(sink).toOpaque(),
            width,
            height
        )
        defer { cairo_surface_destroy(surface) }
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, text.title)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "billingd")
        guard let context = cairo_create(surface) else { throw .cairo("no drawing context") }
        var page = Page(context: context)
        page.draw(text)
        cairo_destroy(context)
        cairo_surface_finish(surface)
        let status = cairo_surface_status(surface)
        guard status == CAIRO_STATUS_SUCCESS else { throw .cairo(String(cString: cairo_status_to_string(status))) }
        return withExtendedLifetime(sink) { sink.bytes }
    }

    /// Where cairo writes the file.
    private final class Sink {
        var bytes: [UInt8] = []
    }

    /// A cursor down one A4 page.
    private struct Page {
        let context: OpaquePointer
        var y = margin

        mutating func draw(_ text: InvoiceText) {
            let right = width - margin
            // Issuer, left; title and facts, right.
            font(bold: true, size: 14)
            line(text.issuerName, x: margin)
            font(bold: false, size: 9.5)
            for issuerLine in text.issuerLines { line(issuerLine, x: margin) }
            let below = y
            y = margin
            font(bold: true, size: 22)
            line("INVOICE", x: right - 200, gap: 8)
            font(bold: false, size: 9.5)
            for (label, value) in text.facts {
                show(label, x: right - 200, y: y + 11)
                show(value, x: right - 110, y: y + 11)
                y += 14
            }
            y = max(y, below) + 28
            heading("BILL TO")
            font(bold: false, size: 10.5)
            for billed in text.billTo { line(billed, x: margin) }
            y += 24
            // The line and the total.
            font(bold: true, size: 10)
            show("Description", x: margin, y: y + 11)
            showRight("Amount", x: right, y: y + 11)
            y += 16
            rule(weight: 0.8)
            font(bold: false, size: 10.5)
            y += 6
            for wrapped in wrap(text.lineDescription, width: right - margin - 140) {
                show(wrapped, x: margin, y: y + 12)
                y += 15
            }
            showRight(text.amount, x: right, y: y - 3)
            y += 4
            rule(weight: 0.5)
            font(bold: true, size: 11)
            show("Total", x: margin, y: y + 16)
            showRight(text.total, x: right, y: y + 16)
            y += 24
            rule(weight: 1.5)
            y += 22
            font(bold: false, size: 10.5)
            for wrapped in wrap(text.instruction, width: right - margin) { line(wrapped, x: margin) }
            y += 18
            heading("BANK DETAILS")
            font(bold: false, size: 10)
            for bankLine in text.bankLines { line(bankLine, x: margin) }
            // The legal text at the foot.
            font(bold: false, size: 8)
            let legal = text.legalText.split(separator: "\n", omittingEmptySubsequences: false)
                .flatMap { wrap(String($0), width: right - margin) }
            y = max(y + 24, height - margin - Double(legal.count) * 10.5 - 8)
            rule(weight: 0.4)
            y += 4
            for wrapped in legal { line(wrapped, x: margin, gap: 0.5) }
            if !text.stamp.isEmpty { stamp(text.stamp) }
        }

        func font(bold: Bool, size: Double) {
            cairo_select_font_face(
                context,
                "DejaVu Sans",
                CAIRO_FONT_SLANT_NORMAL,
                bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL
            )
            cairo_set_font_size(context, size)
            cairo_set_source_rgb(context, 0.07, 0.07, 0.07)
        }

        var lineHeight: Double {
            var extents = cairo_font_extents_t()
            cairo_font_extents(context, &extents)
            return extents.height
        }

        mutating func line(_ text: String, x: Double, gap: Double = 2) {
            y += lineHeight
            show(text, x: x, y: y)
            y += gap
        }

        mutating func heading(_ text: String) {
            font(bold: true, size: 9)
            cairo_set_source_rgb(context, 0.35, 0.35, 0.35)
            line(text, x: margin, gap: 4)
        }

        func show(_ text: String, x: Double, y: Double) {
            cairo_move_to(context, x, y)
            cairo_show_text(context, text)
        }

        func showRight(_ text: String, x: Double, y: Double) {
            show(text, x: x - advance(text), y: y)
        }

        func advance(_ text: String) -> Double {
            var extents = cairo_text_extents_t()
            cairo_text_extents(context, text, &extents)
            return extents.x_advance
        }

        mutating func rule(weight: Double) {
            cairo_set_line_width(context, weight)
            cairo_move_to(context, margin, y)
            cairo_line_to(context, width - margin, y)
            cairo_stroke(context)
        }

        /// Words laid on lines no wider than `width` (a longer word alone on its line).
        func wrap(_ text: String, width: Double) -> [String] {
            var lines: [String] = []
            var current = ""
            for word in text.split(separator: " ") {
                let candidate = current.isEmpty ? String(word) : current + " " + word
                if advance(candidate) <= width || current.isEmpty {
                    current = candidate
                } else {
                    lines.append(current)
                    current = String(word)
                }
            }
            if !current.isEmpty || lines.isEmpty { lines.append(current) }
            return lines
        }

        func stamp(_ text: String) {
            cairo_save(context)
            cairo_select_font_face(context, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD)
            cairo_set_font_size(context, 72)
            cairo_set_source_rgba(context, 0.63, 0, 0, 0.25)
            cairo_translate(context, width / 2, height / 2)
            cairo_rotate(context, -0.35)
            cairo_move_to(context, -advance(text) / 2, 24)
            cairo_show_text(context, text)
            cairo_restore(context)
        }
    }
}
