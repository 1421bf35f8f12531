public import BillingCore
internal import CPangoCairo

/// An invoice as a PDF: drawn with cairo, its text laid out by Pango.
///
/// cairo is the PDF back end of GTK, Inkscape and Firefox's printing, and
/// Pango GTK's text layout; both are maintained by GNOME/freedesktop.org and
/// in every Debian. Pango shapes every script (Arabic joined, right to left)
/// and falls back through fontconfig to an installed font that has a
/// character (DejaVu Sans first, then Noto: `fonts-noto-core` for most
/// scripts, `fonts-noto-cjk` for Chinese, Japanese and Korean; `deploy/setup`). cairo embeds the
/// subsets of the fonts used, so the PDF's text can be searched and copied.
/// In process: no browser, no second process.
///
/// Every text is wrapped to its column (long words broken by character) and
/// the document flows onto further A4 pages when it is longer than one.
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
        guard let layout = pango_cairo_create_layout(context) else {
            cairo_destroy(context)
            throw .cairo("no text layout")
        }
        // Points are the PDF's units: sizes in points at 72 dpi, not a screen's 96.
        pango_cairo_context_set_resolution(pango_layout_get_context(layout), 72)
        pango_layout_context_changed(layout)
        var pages = Pages(context: context, layout: layout)
        pages.draw(text)
        g_object_unref(UnsafeMutableRawPointer(layout))
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

    /// A style of text: its font and colour.
    private struct Style {
        var font: String
        var grey = 0.07

        static let issuer = Style(font: "DejaVu Sans Bold 14")
        static let title = Style(font: "DejaVu Sans Bold 22")
        static let body = Style(font: "DejaVu Sans 10")
        static let small = Style(font: "DejaVu Sans 9")
        static let strong = Style(font: "DejaVu Sans Bold 10")
        static let total = Style(font: "DejaVu Sans Bold 11")
        static let heading = Style(font: "DejaVu Sans Bold 8.5", grey: 0.35)
        static let legal = Style(font: "DejaVu Sans 7.5", grey: 0.25)
        static let stamp = Style(font: "DejaVu Sans Bold 72")
    }

    /// A cursor down the pages; a new page when the next block does not fit.
    private struct Pages {
        let context: OpaquePointer
        let layout: OpaquePointer
        var y = margin
        var page = 1
        let bottom = height - margin
        let right = width - margin

        /// Lays `text` out in a column at `x`, `width` wide; its height.
        func prepare(_ text: String, _ style: Style, width: Double, alignRight: Bool = false) -> Double {
            let description = pango_font_description_from_string(style.font)
            pango_layout_set_font_description(layout, description)
            pango_font_description_free(description)
            pango_layout_set_width(layout, Int32(width * Double(PANGO_SCALE)))
            pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR)
            pango_layout_set_alignment(layout, alignRight ? PANGO_ALIGN_RIGHT : PANGO_ALIGN_LEFT)
            pango_layout_set_text(layout, text, -1)
            // A word broken to fit its column (an IBAN, an email) gets no hyphen that is not in it.
            let attributes = pango_attr_list_new()
            pango_attr_list_insert(attributes, pango_attr_insert_hyphens_new(0))
            pango_layout_set_attributes(layout, attributes)
            pango_attr_list_unref(attributes)
            var inkWidth: Int32 = 0
            var layoutHeight: Int32 = 0
            pango_layout_get_size(layout, &inkWidth, &layoutHeight)
            return Double(layoutHeight) / Double(PANGO_SCALE)
        }

        /// The prepared layout drawn with its top at (x, y).
        func show(x: Double, y: Double, _ style: Style) {
            cairo_set_source_rgb(context, style.grey, style.grey, style.grey)
            cairo_move_to(context, x, y)
            pango_cairo_show_layout(context, layout)
        }

        /// Says on every page after the first whose invoice it is.
        var continuation = ""

        /// True when it began a page.
        @discardableResult
        mutating func newPageIfNeeded(_ needed: Double) -> Bool {
            guard y + needed > bottom, y > margin else { return false }
            cairo_show_page(context)
            page += 1
            y = margin
            let height = prepare("\(continuation), page \(page)", .legal, width: right - margin)
            show(x: margin, y: y, .legal)
            y += height + 14
            return true
        }

        /// A block of text across the column at `x`, moving down past it.
        /// The height of the last `block`.
        var lineHeightOfLast = 0.0

        mutating func block(
            _ text: String,
            _ style: Style,
            x: Double = margin,
            width: Double? = nil,
            after gap: Double = 2
        ) {
            var height = prepare(text, style, width: width ?? (right - x))
            if newPageIfNeeded(height) {
                // The new page's heading used the layout: lay this text out again.
                height = prepare(text, style, width: width ?? (right - x))
            }
            show(x: x, y: y, style)
            lineHeightOfLast = height
            y += height + gap
        }

        mutating func rule(_ weight: Double) {
            cairo_set_source_rgb(context, 0.07, 0.07, 0.07)
            cairo_set_line_width(context, weight)
            cairo_move_to(context, margin, y)
            cairo_line_to(context, right, y)
            cairo_stroke(context)
        }

        mutating func draw(_ text: InvoiceText) {
            continuation = text.title
            // Title and facts on the right of the first page; the issuer on
            // the left beside them (a long issuer flows on down the pages).
            let factsX = right - 230
            let issuerWidth = factsX - margin - 20
            block("INVOICE", .title, x: factsX, after: 6)
            for (label, value) in text.facts {
                let labelHeight = prepare(label, .small, width: 82)
                show(x: factsX, y: y, .small)
                let valueHeight = prepare(value, .small, width: right - factsX - 86)
                show(x: factsX + 86, y: y, .small)
                y += max(labelHeight, valueHeight) + 2
            }
            let factsBottom = y
            y = margin
            block(text.issuerName, .issuer, width: issuerWidth)
            for line in text.issuerLines { block(line, .small, width: issuerWidth, after: 1) }
            y = (page == 1 ? max(y, factsBottom) : y) + 24
            block("BILL TO", .heading, after: 3)
            for line in text.billTo { block(line, .body, after: 1) }
            y += 18
            // The line and the total.
            let amountWidth = 130.0
            newPageIfNeeded(60)
            let headerHeight = prepare("Description", .strong, width: right - margin - amountWidth - 10)
            show(x: margin, y: y, .strong)
            _ = prepare("Amount", .strong, width: amountWidth, alignRight: true)
            show(x: right - amountWidth, y: y, .strong)
            y += headerHeight + 4
            rule(0.8)
            y += 6
            // What was sold, a line each (a renewal of 100 services runs over pages),
            // the amount beside the first.
            for (index, line) in text.lineDescription.split(separator: "\n").enumerated() {
                block(String(line), .body, width: right - margin - amountWidth - 10, after: 3)
                if index == 0 {
                    _ = prepare(text.amount, .body, width: amountWidth, alignRight: true)
                    show(x: right - amountWidth, y: y - lineHeightOfLast - 3, .body)
                }
            }
            y += 3
            newPageIfNeeded(40)
            rule(0.5)
            y += 6
            let totalHeight = prepare("Total", .total, width: 100)
            show(x: margin, y: y, .total)
            _ = prepare(text.total, .total, width: amountWidth, alignRight: true)
            show(x: right - amountWidth, y: y, .total)
            y += totalHeight + 6
            rule(1.5)
            y += 20
            block(text.instruction, .body, after: 18)
            block("BANK DETAILS", .heading, after: 3)
            for line in text.bankLines { block(line, .body, after: 1) }
            block("Payment \(text.paymentID)", .small, after: 1)
            // The legal text last, at the foot of the page when it fits there.
            let legal = text.legalText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let legalHeight = legal.reduce(0) { $0 + prepare($1.isEmpty ? " " : $1, .legal, width: right - margin) + 1 }
            y = max(y + 24, bottom - legalHeight - 8)
            newPageIfNeeded(min(legalHeight + 8, bottom - margin))
            rule(0.4)
            y += 4
            for line in legal { block(line.isEmpty ? " " : line, .legal, after: 1) }
            if !text.stamp.isEmpty { stamp(text.stamp) }
        }

        /// "PAID" or "VOID" across the last page.
        func stamp(_ word: String) {
            let wordHeight = prepare(word, .stamp, width: 500)
            pango_layout_set_width(layout, -1)
            var wordWidth: Int32 = 0
            var ignored: Int32 = 0
            pango_layout_get_size(layout, &wordWidth, &ignored)
            cairo_save(context)
            cairo_set_source_rgba(context, 0.63, 0, 0, 0.25)
            cairo_translate(context, InvoicePDF.width / 2, InvoicePDF.height / 2)
            cairo_rotate(context, -0.35)
            cairo_move_to(context, -Double(wordWidth) / Double(PANGO_SCALE) / 2, -wordHeight / 2)
            pango_cairo_show_layout(context, layout)
            cairo_restore(context)
        }
    }
}
