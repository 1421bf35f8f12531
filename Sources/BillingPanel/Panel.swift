internal import BillingAPI
internal import BillingMessages
internal import Foundation
public import Hummingbird
public import Logging
internal import NIOCore
internal import Synchronization

/// The reference "Balance top-up" pages for one signed-in account at a time,
/// served over plain HTTP on loopback and built only on billingd's API.
///
/// Routes (all pages work without JavaScript; forms are POST with a CSRF token):
/// - `GET|POST /signin`, `POST /signout`: the development sign-in;
/// - `GET|POST /topup`: the top-up page (the default);
/// - `GET /history`, `GET /history/events`: the payment history and its live
///   statuses (Server-Sent Events from billingd's WatchPayments);
/// - `GET /renewals` (services, and the quote of those asked for), `POST
///   /renewals`: renewals;
/// - `GET /migration`, `POST /migration/pay`: paying for a migration's server;
/// - `GET /static/panel.css|panel.js`.
public final class Panel: Sendable {
    let configuration: PanelConfiguration
    let sessions: Sessions
    let billingd: Billingd
    let logger: Logger
    /// The panel's own URL for return links, known once it listens.
    private let baseURL = Mutex("")
    /// `allowedAuthorities`, worked out once the panel listens (empty until then).
    private let authorities = Mutex<Set<String>>([])

    /// A form body is a few fields; 16 KiB leaves room for a renewal of 100
    /// services and refuses anything larger before reading it.
    public static let maxFormBytes = 16 * 1024

    public init(configuration: PanelConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.billingd = try Billingd(configuration)
        sessions = Sessions(
            idleTimeout: .seconds(configuration.sessionIdleMinutes * 60),
            maxSessions: configuration.maxSessions,
            maxLiveStreams: configuration.maxLiveStreams,
            maxLiveStreamsPerSession: configuration.maxLiveStreamsPerSession
        )
        if !configuration.publicURL.isEmpty {
            baseURL.withLock { $0 = String(configuration.publicURL.trimmingSuffix("/")) }
        }
    }

    /// The Hummingbird application on the configured address; `onListening`
    /// gets the port once it listens (0 in the configuration picks a free one).
    public func application(
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        guard let address = HostPort(configuration.listen) else {
            throw PanelConfigurationError(problems: ["listen is not host:port"])
        }
        return Application(
            router: router(),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port),
                serverName: "billing-panel"
            ),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? address.port
                let base = baseURL.withLock { url in
                    if url.isEmpty {
                        let host = address.host.contains(":") ? "[\(address.host)]" : address.host
                        url = "http://\(host):\(port)"
                    }
                    return url
                }
                authorities.withLock { $0 = Self.authorities(base: base, listenHost: address.host, port: port) }
                await onListening(port)
            },
            logger: logger
        )
    }

    /// Where payment systems send the person back: the payment history, at
    /// `publicURL` when one is configured, else at the name the browser used
    /// (127.0.0.1 or localhost: the session cookie belongs to that name, so
    /// coming back at the other would arrive signed out). The name was
    /// checked against `allowedAuthorities` before any route ran.
    func returnURL(_ request: Request) -> String {
        if !configuration.publicURL.isEmpty { return baseURL.withLock { $0 } + "/history" }
        guard let authority = request.head.authority, allowedAuthorities.contains(authority.lowercased()) else {
            return baseURL.withLock { $0 } + "/history"
        }
        return "http://\(authority.lowercased())/history"
    }

    /// The `host:port` values a request may name in `Host` (and its
    /// `Origin`): the address the panel listens on, its loopback aliases,
    /// and `publicURL`'s. Anything else is a name that was made to point
    /// here (DNS rebinding: a web page the person visits re-points its own
    /// name at 127.0.0.1 and drives the panel), refused before any route.
    var allowedAuthorities: Set<String> { authorities.withLock { $0 } }

    private static func authorities(base: String, listenHost: String, port: Int) -> Set<String> {
        var allowed: Set<String> = []
        if let url = URL(string: base), let host = url.host {
            let port = url.port.map { ":\($0)" } ?? ""
            let named = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            allowed.insert(named + port)
            if url.scheme == "http" && url.port == 80 || url.scheme == "https" && url.port == 443 {
                allowed.insert(named)
            }
        }
        for host in ["127.0.0.1", "localhost", "[::1]"] where isLoopbackAlias(host, of: listenHost) {
            allowed.insert("\(host):\(port)")
        }
        return allowed
    }

    private static func isLoopbackAlias(_ alias: String, of host: String) -> Bool {
        switch host {
        case "localhost": true
        case "::1": alias == "[::1]" || alias == "localhost"
        default: alias == host || alias == "localhost"
        }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestGuard { [self] in allowedAuthorities })
        router.add(middleware: SecurityHeaders())
        router.get("/") { [self] request, _ in
            sessions.find(request.cookies[Self.cookieName]?.value)?.accountID == nil
                ? HTML.redirect("/signin") : HTML.redirect("/topup")
        }
        // Browsers ask for it on every page; an empty answer keeps their consoles quiet.
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/static/panel.css") { _, _ in Self.asset(HTML.stylesheet, type: "text/css; charset=utf-8") }
        router.get("/static/panel.js") { _, _ in
            Self.asset(HTML.script, type: "text/javascript; charset=utf-8")
        }
        router.get("/signin") { [self] request, _ in signInPage(visit(request) ?? newVisit()) }
        router.post("/signin") { [self] request, _ in await signIn(request) }
        router.post("/signout") { [self] request, _ in await signOut(request) }
        router.get("/topup") { [self] request, _ in await signedIn(request) { try await topUpPage($0, request) } }
        router.post("/topup") { [self] request, _ in await signedIn(request) { try await topUp($0, request) } }
        router.get("/history") { [self] request, _ in
            await signedIn(request) { try await historyPage($0, request) }
        }
        router.get("/history/events") { [self] request, _ in liveEvents(request) }
        router.get("/invoices/:file") { [self] request, routed in
            let file = routed.parameters.get("file") ?? ""
            return await signedIn(request) { try await invoice($0, request, file: file) }
        }
        router.get("/renewals") { [self] request, _ in
            await signedIn(request) { try await renewalsPage($0, request) }
        }
        router.post("/renewals") { [self] request, _ in await signedIn(request) { try await renew($0, request) } }
        router.post("/renewals/auto") { [self] request, _ in
            await signedIn(request) { try await setAutoRenewal($0, request) }
        }
        router.get("/migration") { [self] request, _ in
            await signedIn(request) { try await migrationPage($0, request) }
        }
        router.post("/migration/pay") { [self] request, _ in
            await signedIn(request) { try await payMigration($0, request) }
        }
        // Anything else: a page that says so, with the same headers as every page.
        router.on("**", method: .get) { _, _ in
            HTML.page(
                title: "Not found",
                signedIn: nil,
                body: "<p>There is no such page. <a href=\"/topup\">Go to the top-up page</a>.</p>",
                status: .notFound
            )
        }
        return router
    }

    private static func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Sessions

    static let cookieName = "panel_session"

    /// The browser's session (and, when it is new, the cookie to set).
    struct Visit {
        let session: Sessions.Session
        var setCookie: HTTPFields = [:]

        var accountID: String? { session.accountID }
        var csrfToken: String { session.csrfToken }
    }

    /// The browser's live session; nil without one. Only the sign-in page
    /// makes sessions (`newVisit`), so requests without a cookie cost nothing.
    func visit(_ request: Request) -> Visit? {
        sessions.find(request.cookies[Self.cookieName]?.value).map { Visit(session: $0) }
    }

    func newVisit() -> Visit {
        let session = sessions.create()
        return Visit(session: session, setCookie: cookie(session.id))
    }

    private func cookie(_ id: String) -> HTTPFields {
        // Lax, not Strict: the way back from Stripe's or PayPal's page is a
        // top-level navigation from another site, and it must arrive signed
        // in. Every change is a POST with a CSRF token anyway.
        let secure = baseURL.withLock { $0.hasPrefix("https:") } ? "; Secure" : ""
        var fields = HTTPFields()
        fields[.setCookie] = "\(Self.cookieName)=\(id); Path=/; HttpOnly; SameSite=Lax\(secure)"
        return fields
    }

    /// Runs a signed-in page; anyone else goes to the sign-in. A `Problem`
    /// becomes a page that says what happened.
    func signedIn(_ request: Request, _ body: (SignedIn) async throws -> Response) async -> Response {
        guard let visit = visit(request), let account = visit.accountID else { return HTML.redirect("/signin") }
        let context = SignedIn(visit: visit, account: account)
        do {
            return try await body(context)
        } catch {
            let problem = error as? Problem ?? Problem(error)
            return await page(
                context,
                title: "Something went wrong",
                tab: nil,
                body: HTML.alert(problem.message) + "<p><a href=\"/topup\">Back to the top-up page</a></p>",
                status: HTTPResponse.Status(code: problem.status),
                // billingd did not answer: asking it for the balance would
                // only make the person wait twice as long for this page.
                balance: problem.status == 503 ? "unavailable" : nil
            )
        }
    }

    struct SignedIn {
        let visit: Visit
        let account: String
        var sessionID: String { visit.session.id }
    }

    /// A signed-in page with the header's balance read now.
    func page(
        _ context: SignedIn,
        title: String,
        tab: HTML.Tab?,
        body: String,
        status: HTTPResponse.Status = .ok,
        balance: String? = nil
    ) async -> Response {
        var shown = balance
        if shown == nil {
            var request = BillingV1.GetBalanceRequest()
            request.accountId = context.account
            shown = (try? await billingd.balance.getBalance(request, options: billingd.options)).map(Display.balance)
        }
        return HTML.page(
            title: title,
            signedIn: (context.account, shown ?? "unavailable", context.visit.csrfToken, tab),
            body: body,
            status: status,
            headers: context.visit.setCookie
        )
    }

    // MARK: Forms

    /// A POSTed form, read whole (at most `maxFormBytes`) and decoded; the
    /// CSRF token is checked before anything else is looked at.
    func form<Form: PanelForm>(_ type: Form.Type, _ request: Request, _ visit: Visit) async throws -> Form {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > Self.maxFormBytes {
            throw Problem(status: 413, "The form is larger than \(Self.maxFormBytes) bytes.")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxFormBytes)
        } catch {
            throw Problem(status: 413, "The form is larger than \(Self.maxFormBytes) bytes.")
        }
        let text = String(buffer: body)
        let form: Form
        do {
            form = try URLEncodedFormDecoder().decode(Form.self, from: text)
        } catch {
            throw Problem(status: 400, "The form could not be read; reload the page and try again.")
        }
        guard let token = form.csrf, Sessions.sameToken(token, visit.csrfToken) else {
            throw Problem(
                status: 403,
                "This form is out of date or did not come from this panel; nothing changed. Reload the page and try again."
            )
        }
        return form
    }

    // MARK: Sign-in

    struct SignInForm: PanelForm {
        var csrf: String?
        var account: String?
    }

    func signInPage(
        _ visit: Visit,
        account: String = "",
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    )
        -> Response
    {
        let describedBy = error == nil ? "" : " aria-describedby=\"account-error\" aria-invalid=\"true\""
        let body = """
            <p class="notice-box">This reference panel has no real user management: choose the account to act as. Anyone who can open this page can act as any account, so it listens on loopback only.</p>
            <form method="post" action="/signin">
            <input type="hidden" name="csrf" value="\(HTML.escape(visit.csrfToken))">
            <label for="account">Account id</label>
            <input type="text" id="account" name="account" value="\(HTML.escape(account))" maxlength="64" required autocomplete="off"\(describedBy)>
            \(HTML.fieldError("account", error))
            <p><button type="submit">Sign in</button></p>
            </form>
            """
        return HTML.page(title: "Sign in", signedIn: nil, body: body, status: status, headers: visit.setCookie)
    }

    func signIn(_ request: Request) async -> Response {
        guard let visit = visit(request) else {
            return signInPage(
                newVisit(),
                error: "This sign-in page had expired; nothing changed. Sign in again.",
                status: .forbidden
            )
        }
        let form: SignInForm
        do {
            form = try await self.form(SignInForm.self, request, visit)
        } catch {
            let problem = error as? Problem ?? Problem(error)
            return signInPage(visit, error: problem.message, status: HTTPResponse.Status(code: problem.status))
        }
        let account = (form.account ?? "").trimmingCharacters(in: .whitespaces)
        guard Self.isID(account) else {
            return signInPage(
                visit,
                account: String(account.prefix(64)),
                error: "An account id is 1 to 64 of A-Z a-z 0-9 _ . -",
                status: .badRequest
            )
        }
        var lookup = BillingV1.GetAccountRequest()
        lookup.accountId = account
        do {
            _ = try await billingd.accounts.getAccount(lookup, options: billingd.options)
        } catch {
            let problem = Problem(error)
            let message = problem.status == 404 ? "There is no account \(account) in billingd." : problem.message
            return signInPage(
                visit,
                account: account,
                error: message,
                status: HTTPResponse.Status(code: problem.status)
            )
        }
        let session = sessions.create(accountID: account, replacing: visit.session.id)
        logger.info("signed in", metadata: ["account": "\(account)"])
        return HTML.redirect("/topup", headers: cookie(session.id))
    }

    func signOut(_ request: Request) async -> Response {
        guard let visit = visit(request) else { return HTML.redirect("/signin") }
        do {
            _ = try await form(SignInForm.self, request, visit)
        } catch {
            // An old page's button (another tab signed in since): say so;
            // the header of this page has a sign-out button that works.
            let problem = error as? Problem ?? Problem(error)
            guard let account = visit.accountID else { return HTML.redirect("/signin") }
            return await page(
                SignedIn(visit: visit, account: account),
                title: "Not signed out",
                tab: nil,
                body: HTML.alert(problem.message)
                    + "<p>Use the Sign out button above, or <a href=\"/topup\">go to the top-up page</a>.</p>",
                status: HTTPResponse.Status(code: problem.status)
            )
        }
        sessions.forget(visit.session.id)
        var fields = HTTPFields()
        fields[.setCookie] = "\(Self.cookieName)=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        return HTML.redirect("/signin", headers: fields)
    }

    /// billingd's rule for ids (accounts, payers, services, orders, methods).
    static func isID(_ text: some StringProtocol) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D
            }
    }
}

/// A form of the panel: every one carries the session's CSRF token.
protocol PanelForm: Decodable {
    var csrf: String? { get }
}

/// Headers on every answer: no framing (clickjacking), scripts and styles
/// from the panel only, no sniffing, no referrer beyond the panel, no caching
/// of pages that show money.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        // A route may narrow it further (an invoice's page: no script at all).
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] =
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.panelReferrerPolicy] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

/// Refuses, before any route, a request whose `Host` is not one of the
/// panel's own names (421), and a POST that a browser says comes from
/// another site (`Origin` of another host, or `Sec-Fetch-Site: cross-site`:
/// 403). With CSRF tokens and SameSite cookies this is the third lock; it is
/// the only one against DNS rebinding, where the page and the panel share
/// an origin in the browser's eyes but not a name.
struct RequestGuard<Context: RequestContext>: RouterMiddleware {
    let allowed: @Sendable () -> Set<String>

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let authorities = allowed()
        guard let host = request.head.authority ?? request.headers[.host], authorities.contains(host.lowercased())
        else {
            return HTML.page(
                title: "Wrong address",
                signedIn: nil,
                body: "<p>This panel answers only at its own address.</p>",
                status: .misdirectedRequest
            )
        }
        if request.method == .post {
            if let site = request.headers[.secFetchSite], site == "cross-site" || site == "same-site" {
                return HTML.page(
                    title: "Refused",
                    signedIn: nil,
                    body: "<p>Forms of other sites are refused.</p>",
                    status: .forbidden
                )
            }
            if let origin = request.headers[.origin] {
                let authority = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first
                guard origin.hasPrefix("http"), let authority, authorities.contains(authority.lowercased()) else {
                    return HTML.page(
                        title: "Refused",
                        signedIn: nil,
                        body: "<p>Forms of other sites are refused.</p>",
                        status: .forbidden
                    )
                }
            }
        }
        return try await next(request, context)
    }
}

/// Header names HTTPTypes does not predefine (Hummingbird exports
/// `HTTPFields` but not `HTTPField`, hence the spelling).
extension HTTPFields.Element.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let panelReferrerPolicy = Self("Referrer-Policy")!
    static let lastEventID = Self("Last-Event-ID")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
    static let host = Self("Host")!
}

extension StringProtocol {
    func trimmingSuffix(_ suffix: String) -> SubSequence {
        var text = self[...]
        while text.hasSuffix(suffix) { text = text.dropLast(suffix.count) }
        return text
    }
}
