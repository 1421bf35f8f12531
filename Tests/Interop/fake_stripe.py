"""A local stand-in for Stripe's API, for billingd's tests (loopback only).

It keeps state across calls (customers, Checkout Sessions, PaymentIntents,
PaymentMethods), answers with the shapes of Stripe's own fixtures
(vendor/stripe-fixtures.json), and validates every request body
against vendor/stripe-openapi.json, the committed digest of Stripe's OpenAPI description: bracketed form keys are
unfolded into nested objects, values coerced by the schema, then checked with
an OpenAPI 3.0 validator (additionalProperties: false, so an unknown or
misspelled parameter fails). Every problem is recorded; tests read them at
GET /_fake/problems and require none.

Test controls (never part of Stripe's API), under /_fake/:
  POST /_fake/sessions/<id>/pay         the customer pays (saves a card if asked); ?later=1: complete but
                                        unpaid (a delayed method) until POST /_fake/sessions/<id>/settle
                                        (?fail=1: the debit fails); ?method=us_bank_account: a bank account
                                        verified by micro-deposits (intent requires_action until settled)
  POST /_fake/sessions/<id>/expire      Stripe expires the session itself
  POST /_fake/decline/<pm>?code=C      off-session charges with this method fail with card_error C
                                        (card_declined, or authentication_required)
  POST /_fake/intents/next?status=S     the next off-session PaymentIntent ends in status S (processing)
  POST /_fake/intents/<id>/succeed      a processing PaymentIntent succeeds
  POST /_fake/webhook?url=U&secret=S&session=ID[&type=T][&age=SECONDS]
                                        delivers a signed event about the session to U; answers
                                        {"status": billingd's HTTP status, "body": …}
  POST /_fake/settlement?minimum=N      Checkout amounts below N minor units are refused (amount_too_small), as
                                        Stripe does for less than 0.50 in the account's settlement currency
  POST /_fake/refund/<pi>?amount=N      a refund of the PaymentIntent (succeeded; ?status= to choose)
  POST /_fake/dispute/<pi>?status=S     a dispute opens (funds withdrawn) or moves to S; won reinstates the funds
  POST /_fake/webhook?…&intent=<pi>&type=charge.refunded|charge.dispute.created|…   an event about the charge or dispute
  GET  /v1/payment_intents/search?query=metadata['payment_id']:'ID', GET /v1/refunds?payment_intent=,
  GET  /v1/disputes?payment_intent=      (not in the vendor description: served as Stripe documents them, unvalidated)
  GET  /v1/payment_intents?created[gte]=&created[lt]=&limit=&starting_after=, GET /v1/payment_methods?customer=
                                         (Stripe's list calls, not in the vendor description either; unvalidated)
  POST /_fake/tamper/sessions|intents/<id>?field=value…   sets fields of a stored object (planted disagreements)
  POST /_fake/intents/orphan?payment_id=P&amount=N       a succeeded PaymentIntent naming a payment billingd never made
  POST /_fake/methods/attach?customer=cus_…              a card saved for that customer outside billingd
  GET  /_fake/charges (every PaymentIntent that took money), /_fake/sessions
and the shared ones of fakeprovider.py (fail, malformed, delay, problems, requests).

Usage: fake_stripe.py   (prints "listening PORT PID", serves until killed)
"""
import copy
import hashlib
import hmac
import json
import re
import os
import time
import urllib.parse
import urllib.request

from openapi_schema_validator import OAS30Validator

from fakeprovider import Fake, delivery, unfold

# The digest of Stripe's description and fixtures (codegen/vendor-digest), beside this script.
VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
with open(os.path.join(VENDOR, "stripe-openapi.json")) as f:
    SPEC = json.load(f)
with open(os.path.join(VENDOR, "stripe-fixtures.json")) as f:
    FIXTURES = json.load(f)["resources"]

STATE = {"customers": {}, "sessions": {}, "intents": {}, "methods": {}, "declined": {}, "charges": [], "next_intent": [],
         "refunds": [], "disputes": {}}


def resolve(schema):
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = SPEC["components"]["schemas"][name]
    return schema


def coerce(value, schema):
    """Form values are strings; give them the types the schema names."""
    schema = resolve(schema)
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            option = resolve(option)
            try:
                candidate = coerce(value, option)
                if OAS30Validator(option).is_valid(candidate):
                    return candidate
            except Exception:
                pass
        return value
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {k: coerce(v, props[k]) if k in props else (coerce(v, extra) if isinstance(extra, dict) else v) for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        return [coerce(v, schema.get("items", {})) for v in value]
    return value


def validate(method, template, body_pairs, query_pairs):
    op = SPEC["paths"][template][method.lower()]
    problems = []
    if method == "POST":
        schema = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        try:
            body = coerce(unfold(body_pairs), schema)
        except Exception as error:  # noqa: BLE001
            return ["%s %s: cannot unfold form: %s" % (method, template, error)], {}
        for error in OAS30Validator(schema).iter_errors(body):
            problems.append("%s %s: %s at %s" % (method, template, error.message, "/".join(str(p) for p in error.absolute_path)))
        for name in schema.get("required", []):
            if name not in body:
                problems.append("%s %s: missing required %s" % (method, template, name))
        return problems, body
    allowed = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
    for key, _ in query_pairs:
        if key.split("[")[0] not in allowed:
            problems.append("%s %s: unknown query parameter %s" % (method, template, key))
    return problems, unfold(query_pairs)


def fixture(kind, **overrides):
    obj = copy.deepcopy(FIXTURES[kind])
    obj.update(overrides)
    return obj


ROUTES = [
    # Not in the vendor description: served after Stripe's published behaviour, unvalidated.
    ("GET", "/v1/payment_intents/search", "/v1/payment_intents/search"),
    ("GET", "/v1/payment_intents", "/v1/payment_intents (list)"),
    ("GET", "/v1/payment_methods", "/v1/payment_methods (list)"),
    ("GET", "/v1/refunds", "/v1/refunds"),
    ("GET", "/v1/disputes", "/v1/disputes"),
    ("POST", "/v1/customers", "/v1/customers"),
    ("POST", "/v1/checkout/sessions", "/v1/checkout/sessions"),
    ("GET", "/v1/checkout/sessions/*", "/v1/checkout/sessions/{session}"),
    ("POST", "/v1/checkout/sessions/*/expire", "/v1/checkout/sessions/{session}/expire"),
    ("POST", "/v1/payment_intents", "/v1/payment_intents"),
    ("GET", "/v1/payment_intents/*", "/v1/payment_intents/{intent}"),
    ("GET", "/v1/payment_methods/*", "/v1/payment_methods/{payment_method}"),
    ("POST", "/v1/payment_methods/*/detach", "/v1/payment_methods/{payment_method}/detach"),
]


def match(method, path):
    parts = path.strip("/").split("/")
    for m, pattern, template in ROUTES:
        pp = pattern.strip("/").split("/")
        if m == method and len(pp) == len(parts) and all(a == "*" or a == b for a, b in zip(pp, parts)):
            args = [b for a, b in zip(pp, parts) if a == "*"]
            return template, args
    return None, None


def error(status, kind, message, code=None, decline=None):
    body = {"error": {"type": kind, "message": message}}
    if code:
        body["error"]["code"] = code
    if decline:
        body["error"]["decline_code"] = decline
    return status, body


def session_view(session, expand):
    view = {k: v for k, v in session.items() if k != "intent_metadata"}
    if "payment_intent" in expand and session.get("payment_intent"):
        view["payment_intent"] = STATE["intents"][session["payment_intent"]]
    return view


def api(method, template, args, body, query, headers):
    port = headers.get("Host", "127.0.0.1").split(":")[-1]
    if template == "/v1/customers":
        customer = fixture("customer", id=FAKE.next_id("cus"), email=body.get("email"), name=body.get("name"),
                           metadata=body.get("metadata", {}))
        STATE["customers"][customer["id"]] = customer
        return 200, customer
    if template == "/v1/checkout/sessions":
        item = body["line_items"][0]
        # As Stripe: an amount worth less than 0.50 in the account's settlement
        # currency is refused (POST /_fake/settlement?minimum=N sets it, in the
        # session's currency's minor units).
        if item["price_data"]["unit_amount"] * item.get("quantity", 1) < STATE.get("settlement_minimum", 0):
            return error(400, "invalid_request_error", "Amount must convert to at least 50 cents in your settlement currency.",
                         "amount_too_small")
        sid = FAKE.next_id("cs_test")
        session = fixture("checkout.session", id=sid, object="checkout.session", status="open", payment_status="unpaid",
                          mode=body.get("mode"), url="http://127.0.0.1:%s/pay/%s" % (port, sid),
                          client_reference_id=body.get("client_reference_id"), metadata=body.get("metadata", {}),
                          customer=body.get("customer"), success_url=body.get("success_url"), cancel_url=body.get("cancel_url"),
                          amount_total=item["price_data"]["unit_amount"] * item.get("quantity", 1),
                          currency=item["price_data"]["currency"], payment_intent=None,
                          setup_future_usage=body.get("payment_intent_data", {}).get("setup_future_usage"),
                          intent_metadata=body.get("payment_intent_data", {}).get("metadata", {}))
        STATE["sessions"][sid] = session
        return 200, session
    if template == "/v1/checkout/sessions/{session}":
        session = STATE["sessions"].get(args[0])
        if not session:
            return error(404, "invalid_request_error", "No such checkout.session: '%s'" % args[0], "resource_missing")
        return 200, session_view(session, query.get("expand", []))
    if template == "/v1/checkout/sessions/{session}/expire":
        session = STATE["sessions"].get(args[0])
        if not session:
            return error(404, "invalid_request_error", "No such checkout.session", "resource_missing")
        if session["status"] != "open":
            return error(400, "invalid_request_error", 'Only Checkout Sessions with a status in ["open"] can be expired.')
        session["status"] = "expired"
        return 200, session
    if template == "/v1/payment_intents":
        pm = body.get("payment_method")
        intent = fixture("payment_intent", id=FAKE.next_id("pi"), amount=body["amount"], currency=body["currency"],
                         customer=body.get("customer"), payment_method=pm, metadata=body.get("metadata", {}),
                         created=int(time.time()))
        if pm not in STATE["methods"] or STATE["methods"][pm].get("customer") is None:
            return error(400, "invalid_request_error", "No such PaymentMethod: '%s'" % pm, "resource_missing")
        if pm in STATE["declined"]:
            code = STATE["declined"][pm]
            intent["status"] = "requires_payment_method" if code == "card_declined" else "requires_action"
            message = "Your card was declined." if code == "card_declined" else "This payment requires authentication."
            status, err = error(402, "card_error", message, code, "insufficient_funds" if code == "card_declined" else code)
            err["error"]["payment_intent"] = intent
            return status, err
        intent["status"] = STATE["next_intent"].pop(0) if STATE["next_intent"] else "succeeded"
        STATE["intents"][intent["id"]] = intent
        if intent["status"] == "succeeded":
            STATE["charges"].append(intent["id"])
        return 200, intent
    if template == "/v1/payment_intents/search":
        # Stripe's search language, the one clause billingd uses: metadata['payment_id']:'pay_…'.
        wanted = re.fullmatch(r"metadata\['payment_id'\]:'([^']*)'", (query.get("query") or [""])[0])
        if wanted is None:
            return error(400, "invalid_request_error", "Invalid search query")
        found = [i for i in STATE["intents"].values() if (i.get("metadata") or {}).get("payment_id") == wanted.group(1)]
        return 200, {"object": "search_result", "data": found, "has_more": False, "next_page": None, "url": "/v1/payment_intents/search"}
    if template in ("/v1/refunds", "/v1/disputes"):
        intent = (query.get("payment_intent") or [None])[0]
        if intent is None:
            return error(400, "invalid_request_error", "payment_intent is required here")
        items = STATE["refunds"] if template == "/v1/refunds" else list(STATE["disputes"].values())
        found = [item for item in items if item["payment_intent"] == intent]
        return 200, {"object": "list", "data": found, "has_more": False, "url": template}
    if template in ("/v1/payment_intents (list)", "/v1/payment_methods (list)"):
        # Stripe's list calls: newest first, ?limit (at most 100), ?starting_after, has_more.
        if template == "/v1/payment_intents (list)":
            low = int((query.get("created[gte]") or ["0"])[0])
            high = int((query.get("created[lt]") or [str(2 ** 62)])[0])
            items = [i for i in STATE["intents"].values() if low <= i.get("created", 0) < high]
        else:
            customer = (query.get("customer") or [None])[0]
            if customer is None:
                return error(400, "invalid_request_error", "customer is required here")
            items = [m for m in STATE["methods"].values() if m.get("customer") == customer]
        items.sort(key=lambda item: (item.get("created", 0), item["id"]), reverse=True)
        after = (query.get("starting_after") or [None])[0]
        if after is not None:
            ids = [item["id"] for item in items]
            if after not in ids:
                return error(400, "invalid_request_error", "No such object: '%s'" % after, "resource_missing")
            items = items[ids.index(after) + 1:]
        limit = int((query.get("limit") or ["10"])[0])
        if not 1 <= limit <= 100:
            return error(400, "invalid_request_error", "limit must be between 1 and 100")
        return 200, {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": template.split(" ")[0]}
    if template == "/v1/payment_intents/{intent}":
        intent = STATE["intents"].get(args[0])
        return (200, intent) if intent else error(404, "invalid_request_error", "No such payment_intent", "resource_missing")
    if template == "/v1/payment_methods/{payment_method}":
        pm = STATE["methods"].get(args[0])
        return (200, pm) if pm else error(404, "invalid_request_error", "No such PaymentMethod", "resource_missing")
    if template == "/v1/payment_methods/{payment_method}/detach":
        pm = STATE["methods"].get(args[0])
        if not pm or pm.get("customer") is None:
            return error(400, "invalid_request_error", "The payment method you provided is not attached to a customer.")
        pm["customer"] = None
        return 200, pm
    return error(404, "invalid_request_error", "Unrecognized request URL")


def control(parts, query):
    if parts[:1] == ["sessions"] and len(parts) == 3:
        session = STATE["sessions"].get(parts[1])
        if not session:
            return 404, {"error": "no such session"}
        if parts[2] == "pay" and session["status"] == "open":
            pm = FAKE.next_id("pm")
            customer = session.get("customer") if session.get("setup_future_usage") else None
            # ?method=us_bank_account: a US bank account verified by micro-deposits, as Stripe
            # does it: the session completes unpaid and its PaymentIntent waits in
            # requires_action (verify_with_microdeposits) until the customer verifies.
            bank = query.get("method") == ["us_bank_account"]
            if bank:
                STATE["methods"][pm] = fixture("payment_method", id=pm, type="us_bank_account", customer=customer, card=None,
                                               us_bank_account={"bank_name": "STRIPE TEST BANK", "last4": "6789",
                                                                "account_holder_type": "individual", "account_type": "checking"})
            else:
                STATE["methods"][pm] = fixture("payment_method", id=pm, type="card", customer=customer,
                                               card=dict(FIXTURES["payment_method"].get("card") or {}, brand="visa", last4="4242"))
            # ?later=1: a delayed method (a bank debit): complete, not yet paid.
            later = query.get("later") == ["1"] or bank
            intent = fixture("payment_intent", id=FAKE.next_id("pi"), status="processing" if later else "succeeded",
                             amount=session["amount_total"], currency=session["currency"], customer=session.get("customer"),
                             payment_method=pm, metadata=session.get("intent_metadata", {}), created=int(time.time()))
            if bank:
                intent.update(status="requires_action", next_action={"type": "verify_with_microdeposits"})
            STATE["intents"][intent["id"]] = intent
            if not later:
                STATE["charges"].append(intent["id"])
            session.update(status="complete", payment_status="unpaid" if later else "paid", payment_intent=intent["id"])
        elif parts[2] == "settle" and session["status"] == "complete" and session["payment_status"] == "unpaid":
            intent = STATE["intents"][session["payment_intent"]]
            if query.get("fail") == ["1"]:
                intent.update(status="requires_payment_method", last_payment_error={"type": "card_error", "code": "payment_method_provider_decline"})
            else:
                intent["status"] = "succeeded"
                STATE["charges"].append(intent["id"])
                session["payment_status"] = "paid"
        elif parts[2] == "expire" and session["status"] == "open":
            session["status"] = "expired"
        return 200, session
    if parts[:1] == ["refund"] and len(parts) == 2:
        intent = STATE["intents"][parts[1]]
        refund = fixture("refund", id=FAKE.next_id("re"), object="refund", amount=int(query.get("amount", [str(intent["amount"])])[0]),
                         currency=intent["currency"], payment_intent=intent["id"], charge="ch_" + intent["id"][3:],
                         status=query.get("status", ["succeeded"])[0], reason="requested_by_customer", metadata={})
        STATE["refunds"].append(refund)
        return 200, refund
    if parts[:1] == ["dispute"] and len(parts) == 2:
        # ?status=needs_response|under_review|won|lost: a dispute opens with the funds
        # withdrawn (a negative balance transaction); won reinstates them (a positive one).
        intent = STATE["intents"][parts[1]]
        status = query.get("status", ["needs_response"])[0]
        dispute = STATE["disputes"].get(intent["id"])
        if dispute is None:
            dispute = fixture("dispute", id=FAKE.next_id("dp"), object="dispute", amount=intent["amount"], currency=intent["currency"],
                              payment_intent=intent["id"], charge="ch_" + intent["id"][3:], reason="fraudulent", metadata={},
                              balance_transactions=[{"object": "balance_transaction", "id": FAKE.next_id("txn"),
                                                     "amount": -intent["amount"] - 1500, "type": "adjustment"}])
            STATE["disputes"][intent["id"]] = dispute
        dispute["status"] = status
        if status == "won" and len(dispute["balance_transactions"]) == 1:
            dispute["balance_transactions"].append({"object": "balance_transaction", "id": FAKE.next_id("txn"),
                                                    "amount": intent["amount"] + 1500, "type": "adjustment"})
        return 200, dispute
    if parts == ["settlement"]:
        STATE["settlement_minimum"] = int(query.get("minimum", ["0"])[0])
        return 200, {}
    if parts[:1] == ["decline"] and len(parts) == 2:
        STATE["declined"][parts[1]] = query.get("code", ["card_declined"])[0]
        return 200, {}
    if parts[:1] == ["webhook"]:
        return webhook(query)
    if parts[:1] == ["intents"] and len(parts) == 3 and parts[2] == "succeed":
        intent = STATE["intents"][parts[1]]
        intent["status"] = "succeeded"
        STATE["charges"].append(intent["id"])
        return 200, intent
    if parts == ["intents", "next"]:
        STATE["next_intent"].append(query.get("status", ["succeeded"])[0])
        return 200, {}
    if parts[:1] == ["charges"]:
        return 200, STATE["charges"]
    if parts[:1] == ["tamper"] and len(parts) == 3 and parts[1] in ("sessions", "intents"):
        # Reconciliation tests plant disagreements: set fields of a stored session or intent.
        record = STATE[parts[1]].get(parts[2])
        if record is None:
            return 404, {"error": "no such %s" % parts[1]}
        for key, values in query.items():
            record[key] = int(values[0]) if values[0].lstrip("-").isdigit() else values[0]
        return 200, record
    if parts == ["intents", "orphan"]:
        # Money taken naming a payment id billingd never made.
        intent = fixture("payment_intent", id=FAKE.next_id("pi"), status="succeeded", created=int(time.time()),
                         amount=int(query.get("amount", ["500"])[0]), currency=query.get("currency", ["usd"])[0],
                         metadata={"payment_id": query.get("payment_id", ["pay_ghost"])[0]})
        STATE["intents"][intent["id"]] = intent
        STATE["charges"].append(intent["id"])
        return 200, intent
    if parts == ["methods", "attach"]:
        # A card saved for a customer outside billingd's flows.
        pm = FAKE.next_id("pm")
        STATE["methods"][pm] = fixture("payment_method", id=pm, type="card", customer=query["customer"][0],
                                       created=int(time.time()),
                                       card=dict(FIXTURES["payment_method"].get("card") or {}, brand="visa", last4="4242"))
        return 200, STATE["methods"][pm]
    if parts[:1] == ["sessions"] and len(parts) == 1:
        return 200, list(STATE["sessions"].values())
    if parts[:1] == ["attach"] and len(parts) == 2:
        # A card saved earlier by some other flow: attached to a new customer.
        customer = FAKE.next_id("cus")
        STATE["customers"][customer] = fixture("customer", id=customer)
        STATE["methods"][parts[1]] = fixture("payment_method", id=parts[1], type="card", customer=customer,
                                             card=dict(FIXTURES["payment_method"].get("card") or {}, brand="visa", last4="4242"))
        return 200, {"customer": customer, "payment_method": parts[1]}
    return None


def webhook(query):
    """Signs an event about a session as Stripe does (Stripe-Signature: t=…,v1=HMAC-SHA256
    of "t.body") and POSTs it to ?url=. ?secret= signs it; ?age= backdates t by that many
    seconds; ?type= is the event type."""
    kind = query.get("type", ["checkout.session.completed"])[0]
    if "intent" in query:
        # charge.refunded: the charge; charge.dispute.*: the dispute (both name the PaymentIntent).
        intent = STATE["intents"][query["intent"][0]]
        if kind.startswith("charge.dispute."):
            subject = STATE["disputes"][intent["id"]]
        else:
            refunded = sum(r["amount"] for r in STATE["refunds"] if r["payment_intent"] == intent["id"] and r["status"] == "succeeded")
            subject = fixture("charge", id="ch_" + intent["id"][3:], object="charge", amount=intent["amount"], currency=intent["currency"],
                              payment_intent=intent["id"], amount_refunded=refunded, refunded=refunded >= intent["amount"], metadata={})
    else:
        subject = STATE["sessions"][query["session"][0]]
    event = fixture("event", id=FAKE.next_id("evt"), type=kind, data={"object": json.loads(json.dumps(subject))}, livemode=False)
    body = json.dumps(event).encode()
    timestamp = int(time.time()) - int(query.get("age", ["0"])[0])
    signature = hmac.new(query["secret"][0].encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(query["url"][0], data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": "t=%d,v1=%s" % (timestamp, signature)})
    return 200, {}, delivery(request)


class StripeFake(Fake):
    def check(self, method, path, query_pairs, headers, raw_body):
        if not (headers.get("Authorization") or "").startswith("Bearer sk_test_"):
            return error(401, "invalid_request_error", "Invalid API Key provided"), None
        template, args = match(method, path)
        if template is None:
            self.problems.append("%s %s: not an operation of the spec" % (method, path))
            return error(404, "invalid_request_error", "Unrecognized request URL"), None
        if method == "POST" and headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            self.problems.append("%s %s: body is not form-encoded" % (method, path))
        if template in SPEC["paths"]:
            problems, body = validate(method, template, urllib.parse.parse_qsl(raw_body, keep_blank_values=True), query_pairs)
        else:
            problems, body = [], unfold(urllib.parse.parse_qsl(raw_body, keep_blank_values=True))
        self.problems.extend(problems)
        if problems:
            return error(400, "invalid_request_error", "; ".join(problems)), None
        query = {}
        for k, v in query_pairs:
            query.setdefault(k.replace("[]", ""), []).append(v)
        return None, (method, template, args, body, query)

    def api(self, context, headers):
        method, template, args, body, query = context
        return api(method, template, args, body, query, headers)

    def control(self, parts, query):
        return control(parts, query)


FAKE = StripeFake()

if __name__ == "__main__":
    FAKE.serve()
