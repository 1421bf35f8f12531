internal import BillingCore
internal import Hummingbird

/// HTML for people: every text from billingd or the browser goes through
/// `escape` (`BillingCore.HTMLText`, per Unicode scalar) before it reaches a
/// page, in text and in quoted attributes alike.
enum HTML {
    static func escape(_ text: some StringProtocol) -> String { HTMLText.escape(text) }

    /// The panel's tabs; the one shown is marked for assistive technology too.
    enum Tab: String, CaseIterable {
        case topUp = "/topup"
        case renewals = "/renewals"
        case migration = "/migration"
        case history = "/history"

        var title: String {
            switch self {
            case .topUp: "Top-up"
            case .renewals: "Renewals"
            case .migration: "Migration payment"
            case .history: "Payment history"
            }
        }
    }

    /// A whole page. `signedIn` carries the header (account, balance button,
    /// tabs, sign-out); without it the page is the sign-in.
    static func page(
        title: String,
        signedIn: (account: String, balance: String, csrfToken: String, tab: Tab?)?,
        body: String,
        status: HTTPResponse.Status = .ok,
        headers extra: HTTPFields = [:]
    ) -> Response {
        var header = ""
        if let signedIn {
            let tabs = Tab.allCases.map { tab in
                let current = tab == signedIn.tab ? " aria-current=\"page\"" : ""
                return "<a href=\"\(tab.rawValue)\"\(current)>\(tab.title)</a>"
            }.joined()
            header = """
                <header>
                <p class="notice">Development sign-in: no real user management. Signed in as account <strong id="account">\(escape(signedIn.account))</strong>.</p>
                <div class="bar">
                <a class="balance" href="/topup" title="Top up your balance">Balance: <span id="balance">\(escape(signedIn.balance))</span></a>
                <form method="post" action="/signout"><input type="hidden" name="csrf" value="\(escape(signedIn.csrfToken))"><button type="submit">Sign out</button></form>
                </div>
                <nav aria-label="Payments">\(tabs)</nav>
                </header>
                """
        }
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · billing panel</title>
            <link rel="stylesheet" href="/static/panel.css"><script src="/static/panel.js" defer></script></head>
            <body>\(header)<main><h1>\(escape(title))</h1>
            \(body)
            </main></body></html>
            """
        var headers = extra
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// A message above a form: `role="alert"` so screen readers announce it.
    static func alert(_ message: String?) -> String {
        guard let message, !message.isEmpty else { return "" }
        return "<p class=\"error\" role=\"alert\" id=\"form-error\">\(escape(message))</p>"
    }

    /// A field's own message, tied to the field by `aria-describedby`.
    static func fieldError(_ id: String, _ message: String?) -> String {
        guard let message, !message.isEmpty else { return "" }
        return "<p class=\"error field-error\" id=\"\(id)-error\" role=\"alert\">\(escape(message))</p>"
    }

    /// The button Enter in a field presses: a form's first submit button.
    /// Forms whose presets or payer button come before their own button
    /// start with this copy of it, out of sight and out of the tab order.
    static func defaultSubmit(_ label: String) -> String {
        "<button type=\"submit\" class=\"visually-hidden\" tabindex=\"-1\" aria-hidden=\"true\">\(escape(label))</button>"
    }

    static func redirect(_ location: String, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    static let stylesheet = """
        :root { font-family: system-ui, sans-serif; color: #1d2330; background: #f5f6f8; }
        body { margin: 0; }
        header { background: #1d2b4f; color: #fff; padding: .6rem 1.5rem .2rem; }
        header a { color: #fff; }
        .notice { margin: 0 0 .4rem; font-size: .85rem; opacity: .85; }
        .bar { display: flex; gap: 1rem; align-items: center; justify-content: space-between; }
        .balance { font-weight: 600; text-decoration: none; background: #2f4a86; padding: .35rem .8rem; border-radius: 4px; }
        nav { display: flex; gap: .3rem; margin-top: .6rem; }
        nav a { padding: .45rem .9rem; text-decoration: none; border-radius: 4px 4px 0 0; }
        nav a[aria-current="page"] { background: #f5f6f8; color: #1d2b4f; font-weight: 600; }
        main { padding: 1rem 1.5rem 3rem; max-width: 72rem; }
        h1 { font-size: 1.4rem; }
        fieldset { border: 1px solid #c9ceda; border-radius: 6px; margin: 0 0 1rem; padding: .8rem 1rem; background: #fff; }
        legend { font-weight: 600; padding: 0 .3rem; }
        label { display: block; margin: .3rem 0; }
        input[type=text], input[type=number], input[type=date], select { font-size: 1rem; padding: .35rem .5rem; border: 1px solid #9aa3b5; border-radius: 4px; }
        .presets { display: flex; gap: .5rem; margin: .3rem 0 .6rem; flex-wrap: wrap; }
        .presets button[aria-pressed="true"] { background: #2f4a86; color: #fff; }
        .hint { color: #556; font-size: .9rem; margin: .2rem 0; }
        .error { color: #a4161a; font-weight: 600; }
        .ok { color: #1b6e20; font-weight: 600; }
        button { font-size: 1rem; padding: .45rem 1.1rem; border-radius: 4px; border: 1px solid #2f4a86; background: #2f4a86; color: #fff; cursor: pointer; }
        header button { background: transparent; border-color: #fff; font-size: .85rem; padding: .25rem .7rem; }
        button.secondary { background: #fff; color: #2f4a86; }
        a:focus, button:focus, input:focus, select:focus { outline: 3px solid #f0b429; outline-offset: 1px; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e1e4ea; vertical-align: top; }
        td.amount { text-align: right; white-space: nowrap; }
        .status { font-weight: 600; white-space: nowrap; }
        .status-new { color: #8a5a00; } .status-paid { color: #1b6e20; } .status-cancelled { color: #a4161a; }
        .filters { display: flex; gap: 1rem; flex-wrap: wrap; align-items: end; }
        .filters label { margin: 0; }
        #auto-renewal-form { margin-top: 1rem; }
        .paging { display: flex; gap: 1rem; margin: 1rem 0; }
        .live { font-size: .85rem; color: #556; }
        #new-payments { background: #fff7d6; padding: .5rem .8rem; border-radius: 4px; }
        .js .nojs { display: none; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        tr.highlight { background: #eef4ff; }
        dl { display: grid; grid-template-columns: max-content auto; gap: .3rem 1rem; background: #fff; padding: .8rem 1rem; border-radius: 6px; }
        dt { font-weight: 600; }
        dd { margin: 0; }
        .notice-box { background: #fff7d6; padding: .6rem .9rem; border-radius: 4px; max-width: 48rem; }
        """

    /// Progressive enhancement only: every page works without it (presets
    /// and "show this payer's methods" send the form back, live updates
    /// become a reload). All text from the server goes in through
    /// textContent, never as markup.
    static let script = """
        "use strict";
        document.documentElement.classList.add("js");
        document.addEventListener("DOMContentLoaded", function () {
          var amount = document.getElementById("amount");
          function pressPresets() {
            document.querySelectorAll("button[data-amount]").forEach(function (preset) {
              var typed = amount ? amount.value.trim() : "";
              var same = /^[0-9]+(\\.[0-9]+)?$/.test(typed) && Number(typed) === Number(preset.getAttribute("data-amount"));
              preset.setAttribute("aria-pressed", same ? "true" : "false");
            });
          }
          if (amount) { amount.addEventListener("input", pressPresets); }
          document.querySelectorAll("button[data-amount]").forEach(function (preset) {
            preset.addEventListener("click", function (event) {
              if (!amount) { return; }
              event.preventDefault();
              amount.value = preset.getAttribute("data-amount");
              pressPresets();
            });
          });
          // The payer's methods, switched in place: the others' are hidden and disabled.
          var payer = document.querySelector("select[data-payer-select]");
          if (payer) {
            payer.addEventListener("change", function () {
              var balance = document.getElementById("option-balance");
              var keepBalance = balance && balance.checked;
              document.querySelectorAll("[data-payer-options]").forEach(function (group) {
                var shown = group.getAttribute("data-payer-options") === payer.value;
                group.hidden = !shown;
                group.querySelectorAll("input").forEach(function (input) {
                  input.disabled = !shown;
                  if (!shown) { input.checked = false; }
                });
                var fallback = group.getAttribute("data-default");
                if (shown && fallback && !keepBalance) {
                  group.querySelectorAll("input").forEach(function (input) {
                    if (input.value === fallback) { input.checked = true; }
                  });
                }
              });
            });
          }
          var live = document.querySelector("[data-live-url]");
          if (!live || !window.EventSource) { return; }
          var state = document.getElementById("live-state");
          var last = live.getAttribute("data-after");
          var source = null;
          var failures = 0;
          function say(mode, text) {
            live.setAttribute("data-live", mode);
            if (state) { state.textContent = text; }
          }
          function remember(message) { if (message.lastEventId) { last = message.lastEventId; } }
          function connect() {
            source = new EventSource(live.getAttribute("data-live-url") + "&after=" + encodeURIComponent(last));
            source.addEventListener("open", function () { failures = 0; say("on", "Statuses update live."); });
            source.addEventListener("error", function () {
              if (source.readyState !== EventSource.CLOSED) { say("reconnecting", "Reconnecting to live updates…"); return; }
              // Refused (too many live pages, signed out): try again later, from the last event seen.
              source = null;
              failures += 1;
              say("off", "Live updates paused; trying again shortly (or reload the page).");
              setTimeout(function () { if (!source && !document.hidden) { connect(); } }, Math.min(30000, 2000 * failures));
            });
            source.addEventListener("payment", function (message) {
              remember(message);
              var event = JSON.parse(message.data);
              var row = document.getElementById("payment-" + event.id);
              if (!row) {
                var banner = document.getElementById("new-payments");
                if (banner && event.created) { banner.hidden = false; }
                return;
              }
              var cell = row.querySelector("[data-status]");
              cell.textContent = event.statusText;
              cell.className = "status status-" + event.status;
              row.setAttribute("data-status", event.status);
              if (event.failure) { row.querySelector("[data-details]").textContent = event.failure; }
            });
            source.addEventListener("notification", function (message) {
              remember(message);
              var event = JSON.parse(message.data);
              var row = document.getElementById("payment-" + event.payment);
              if (!row) { return; }
              var details = row.querySelector("[data-details]");
              details.textContent = event.title + ": " + event.body;
              details.className = event.severity === "error" ? "error" : "";
            });
            source.addEventListener("balance", function (message) {
              remember(message);
              var balance = document.getElementById("balance");
              if (balance) { balance.textContent = JSON.parse(message.data).balance; }
            });
          }
          // A hidden tab gives its connection back (browsers allow six per
          // site) and picks up from its last event when shown again.
          document.addEventListener("visibilitychange", function () {
            if (document.hidden && source) {
              source.close();
              source = null;
              say("paused", "Live updates paused while this tab is hidden.");
            } else if (!document.hidden && !source) {
              connect();
            }
          });
          if (!document.hidden) { connect(); }
        });
        """
}
