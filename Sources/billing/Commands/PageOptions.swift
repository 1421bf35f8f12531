import ArgumentParser
import BillingMessages

/// The paging options every listing shares, and the loop that reads its pages.
struct PageOptions: ParsableArguments {
    @Option(help: "Page size, 1 to 200.") var limit: Int = 20
    @Option(help: "The next-page token printed by the previous page.") var pageToken: String?
    @Flag(help: "Every page, not only the first.") var all = false

    func validate() throws {
        guard (1...200).contains(limit) else { throw ValidationError("--limit must be 1 to 200") }
    }

    /// The first page (or every page with --all), each read by `fetch`;
    /// returns the items and the token of the page after them ("" at the end).
    /// A `fetch` that returns "" as its next token ends the listing.
    func collect<Item>(
        _ fetch: (BillingV1.PageRequest) async throws -> (items: [Item], next: String)
    ) async throws -> (items: [Item], next: String) {
        var page = BillingV1.PageRequest()
        page.pageSize = UInt32(limit)
        page.pageToken = pageToken ?? ""
        var items: [Item] = []
        var next = ""
        repeat {
            let got = try await fetch(page)
            items += got.items
            next = got.next
            page.pageToken = next
        } while all && !next.isEmpty
        return (items, next)
    }
}
