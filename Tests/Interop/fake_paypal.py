"""A local stand-in for PayPal's REST API (OAuth2 token + Orders v2), for
billingd's tests (loopback only).

It keeps state across calls (tokens, orders, captures, vaulted wallets) and
checks every request against vendor/paypal-checkout_orders_v2.json (the
committed digest of PayPal's OpenAPI description):
JSON bodies with an OpenAPI 3.0 write validator (types, patterns, enums,
required) and, because PayPal's schemas leave `additionalProperties` open, a
strict walk that refuses any property the description does not name, and in
requests any deprecated or read-only one; headers (PayPal-Request-Id, Prefer) and path ids
against their parameter schemas. Its own answers are checked against the
`order` schema the same way, so the adapter is tested against real shapes.
Every problem is recorded; tests read them at GET /_fake/problems and require
none. The token endpoint (/v1/oauth2/token, named by the spec's security
scheme) follows PayPal's documented client-credentials exchange.

Test controls (never part of PayPal's API), under /_fake/:
  POST /_fake/orders/<id>/approve       the payer approves on PayPal's page
  POST /_fake/orders/<id>/void          PayPal voids the order
  POST /_fake/orders/<id>/expire        the order is gone (GET answers 404)
  POST /_fake/capture?status=DECLINED   the next capture ends with that status (COMPLETED, DECLINED, FAILED, PENDING
                                        with ?reason=, default PENDING_REVIEW),
                                        or is refused with 422 INSTRUMENT_DECLINED
  POST /_fake/captures/<id>/complete    a PENDING capture completes
  POST /_fake/refund/<order>?value=V     a (partial) refund of the order's capture; the order then lists it
  POST /_fake/reverse/<order>           a dispute holds the capture's funds (PENDING, reason CHARGEBACK or ?reason=)
  POST /_fake/reinstate/<order>         the dispute is won: the capture is COMPLETED again
  POST /_fake/vault/late                the next capture that vaults a wallet says APPROVED without an id; the id
                                        comes with POST /_fake/webhook?type=VAULT.PAYMENT-TOKEN.CREATED&order=…
  POST /_fake/decline/<vault_id>        charges of this vaulted wallet are declined
  POST /_fake/token?expires_in=N        tokens issued from now on live N seconds
  POST /_fake/revoke                    every issued token stops working
  POST /_fake/webhook?url=U&order=ID[&type=CHECKOUT.ORDER.APPROVED|PAYMENT.CAPTURE.REFUNDED|…][&webhook_id=W][&forge=1]
                                        delivers a notification with PayPal's transmission headers;
                                        POST /v1/notifications/verify-webhook-signature answers SUCCESS
                                        only for exactly what was delivered (forge=1 alters the signature)
  GET  /_fake/tokens, /_fake/charges (completed captures), /_fake/orders, /_fake/vaults
and the shared ones of fakeprovider.py (fail, malformed, delay, problems, requests).

Usage: fake_paypal.py   (prints "listening PORT PID", serves until killed)
"""
import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse
import urllib.request
import zlib

from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

from fakeprovider import Fake, delivery

# The digests of PayPal's descriptions (codegen/vendor-digest), beside this script.
VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
with open(os.path.join(VENDOR, "paypal-checkout_orders_v2.json")) as f:
    COMPONENTS = json.load(f)["components"]
with open(os.path.join(VENDOR, "paypal-notifications_webhooks_v1.json")) as f:
    NOTIFICATIONS = json.load(f)["components"]
CLIENT_ID = "billingd-client"
CLIENT_SECRET = "billingd-secret"
# PayPal's currency decimal rules, for the currencies the tests use.
ZERO_DECIMAL = {"JPY", "HUF", "TWD"}


def resolve(schema, components=COMPONENTS):
    while "$ref" in schema:
        schema = components["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def parameter(name):
    return COMPONENTS["parameters"][name]


def shape(schema, components):
    """(properties, additional allowed) of an object schema, allOf merged."""
    schema = resolve(schema, components)
    properties = dict(schema.get("properties", {}))
    additional = bool(schema.get("additionalProperties"))
    for part in schema.get("allOf", []):
        more, open_ = shape(part, components)
        properties.update(more)
        additional = additional or open_
    return properties, additional


def strict(value, schema, path, mode, components=COMPONENTS):
    """Problems the validator does not see: unnamed, deprecated, read-only properties."""
    raw = schema
    schema = resolve(schema, components)
    problems = []
    if mode == "write" and (raw.get("deprecated") or schema.get("deprecated")):
        problems.append("%s is deprecated" % path)
    if mode == "write" and (raw.get("readOnly") or schema.get("readOnly")):
        problems.append("%s is read-only" % path)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        results = [strict(value, option, path, mode, components) for option in options]
        return problems + min(results, key=len)
    if isinstance(value, dict):
        properties, additional = shape(schema, components)
        for key, item in value.items():
            if key in properties:
                problems.extend(strict(item, properties[key], "%s/%s" % (path, key), mode, components))
            elif not additional:
                problems.append("%s/%s is not in the description" % (path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems.extend(strict(item, schema["items"], "%s/%d" % (path, index), mode, components))
    return problems


def check_value(value, schema_name, where, mode, components=COMPONENTS):
    root = {"$ref": "#/components/schemas/" + schema_name, "components": components}
    validator = (OAS30WriteValidator if mode == "write" else OAS30ReadValidator)(root)
    problems = ["%s: %s at /%s" % (where, e.message, "/".join(str(p) for p in e.absolute_path)) for e in validator.iter_errors(value)]
    return problems + ["%s: %s" % (where, p) for p in strict(value, {"$ref": root["$ref"]}, "", mode, components)]


def check_parameter(name, value, where):
    schema = parameter(name)["schema"]
    problems = []
    if value is None:
        return ["%s: missing required %s" % (where, parameter(name)["name"])] if parameter(name).get("required") else []
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
        problems.append("%s: %s has length %d" % (where, parameter(name)["name"], len(value)))
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append("%s: %s does not match %s" % (where, parameter(name)["name"], schema["pattern"]))
    return problems


def failure(status, name, message, issue=None, description=None, debug_id="fake"):
    body = {"name": name, "message": message, "debug_id": debug_id, "links": []}
    if issue:
        body["details"] = [{"issue": issue, "description": description or issue}]
    return status, body


NOT_FOUND = ("RESOURCE_NOT_FOUND", "The specified resource does not exist.")
UNPROCESSABLE = ("UNPROCESSABLE_ENTITY", "The requested action could not be performed, semantically incorrect, or failed business validation.")

ROUTES = [
    ("POST", re.compile(r"^/v1/oauth2/token$"), "token"),
    ("POST", re.compile(r"^/v2/checkout/orders$"), "create"),
    ("GET", re.compile(r"^/v2/checkout/orders/([^/]+)$"), "get"),
    ("POST", re.compile(r"^/v2/checkout/orders/([^/]+)/capture$"), "capture"),
    # Payment Method Tokens v3 (not in the vendor descriptions; PayPal's documented
    # DELETE answers 204, and 404 for a token it does not know).
    ("DELETE", re.compile(r"^/v3/vault/payment-tokens/([^/]+)$"), "delete_token"),
    ("POST", re.compile(r"^/v1/notifications/verify-webhook-signature$"), "verify"),
]


def payer_id(order_id):
    """13 characters of PayPal's account id alphabet, from the order's number."""
    alphabet, number, digits = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ", int(order_id[4:]), ""
    for _ in range(13):
        number, digit = divmod(number, len(alphabet))
        digits = alphabet[digit] + digits
    return digits


def raw_event(raw_body):
    """The bytes of the webhook_event value as they stand in a verify request."""
    text = raw_body if isinstance(raw_body, str) else raw_body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    index = 1
    while index < len(text):
        key, index = decoder.raw_decode(text, text.index('"', index))
        index = text.index(":", index) + 1
        while text[index] in " \t\r\n":
            index += 1
        value, end = decoder.raw_decode(text, index)
        if key == "webhook_event":
            return text[index:end].encode()
        index = text.index(",", end) + 1 if "," in text[end:] else len(text)
    return b""


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class PayPalFake(Fake):
    request_id_header = "Paypal-Debug-Id"
    idempotency_header = "PayPal-Request-Id"

    def __init__(self):
        super().__init__()
        self.tokens = {}          # token -> expiry (epoch seconds)
        self.issued = 0
        self.token_lifetime = 32400
        self.orders = {}
        self.captures = {}        # capture id -> order id
        self.vaults = {}          # vault id -> payer
        self.late_vaults = 0      # captures whose vault id comes later, by webhook
        self.pending_vaults = {}  # order id -> (vault id, payer, customer) not yet sent
        self.declined = set()
        self.next_capture = []
        self.port = 0
        # transmission id -> (time, signature, webhook id, event, cert url, algorithm) as delivered
        self.deliveries = {}

    def order_id(self):
        self.counter += 1
        return "FAKE%013d" % self.counter

    # Shared machinery.

    def scripted_error(self, status):
        if status == 429:
            return failure(429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting.")
        return failure(status, "INTERNAL_SERVER_ERROR", "An internal server error occurred.")

    def reused_key_error(self):
        return failure(422, *UNPROCESSABLE, issue="DUPLICATE_REQUEST_ID", description="The PayPal-Request-Id was used with a different request.")[1]

    def replayed_status(self, status):
        # A repeated idempotent request answers 200 OK with the same body.
        return 200 if status == 201 else status

    def check(self, method, path, query_pairs, headers, raw_body):
        self.port = int(headers.get("Host", "127.0.0.1:0").split(":")[-1])
        route = next(((name, m.groups()) for verb, pattern, name in ROUTES if verb == method for m in [pattern.match(path)] if m), None)
        if route is None:
            self.problems.append("%s %s: not an operation of the spec" % (method, path))
            return failure(404, *NOT_FOUND), None
        name, args = route
        where = "%s %s" % (method, path)
        if name == "token":
            return self.check_token_request(headers, raw_body, where)
        if not self.authorized(headers):
            return (401, {"error": "invalid_token", "error_description": "Token signature verification failed"}), None
        problems = []
        if name == "verify":
            return self.check_verify_request(headers, raw_body, where)
        if args and name == "delete_token":
            if not re.search(COMPONENTS["schemas"]["vault_id"]["pattern"], args[0]):
                problems.append("%s: not a vault id" % where)
        elif args:
            problems += check_parameter("id", args[0], where)
        allowed_query = {"fields"} if name == "get" else set()
        for key, value in query_pairs:
            if key not in allowed_query:
                problems.append("%s: unknown query parameter %s" % (where, key))
            elif not re.search(parameter("fields")["schema"]["pattern"], value):
                problems.append("%s: fields does not match its pattern" % where)
        body = None
        if method == "POST":
            if headers.get("Content-Type", "").split(";")[0] != "application/json":
                problems.append("%s: body is not JSON (Content-Type %s)" % (where, headers.get("Content-Type")))
            problems += check_parameter("paypal_request_id", headers.get("PayPal-Request-Id"), where)
            problems += check_parameter("prefer", headers.get("Prefer"), where)
            try:
                body = json.loads(raw_body) if raw_body else {}
            except ValueError:
                problems.append("%s: body is not JSON" % where)
                body = {}
            problems += check_value(body, "order_request" if name == "create" else "order_capture_request", where, "write")
            if name == "create":
                problems += self.check_amounts(body, where)
                if body.get("payment_source") and not headers.get("PayPal-Request-Id"):
                    problems.append("%s: PayPal-Request-Id is required with a payment_source" % where)
        self.problems.extend(problems)
        if problems:
            return failure(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.",
                           issue="INVALID_PARAMETER_SYNTAX", description="; ".join(problems)), None
        return None, (name, args, body, headers.get("Prefer") == "return=representation")

    def check_amounts(self, body, where):
        problems = []
        for unit in body.get("purchase_units", []):
            amount = unit.get("amount", {})
            decimals = len(amount.get("value", "").partition(".")[2])
            wanted = 0 if amount.get("currency_code") in ZERO_DECIMAL else 2
            if decimals != wanted:
                problems.append("%s: %s amounts take %d decimals, not %d (DECIMAL_PRECISION)" % (where, amount.get("currency_code"), wanted, decimals))
        return problems

    def check_verify_request(self, headers, raw_body, where):
        problems = []
        if headers.get("Content-Type", "").split(";")[0] != "application/json":
            problems.append("%s: body is not JSON" % where)
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = None
            problems.append("%s: body is not JSON" % where)
        if body is not None:
            # The event goes back as it was received: its read-only fields belong in it.
            problems += check_value(body, "verify_webhook_signature", where, "read", NOTIFICATIONS)
        self.problems.extend(problems)
        if problems:
            return failure(400, "VALIDATION_ERROR", "Invalid request - see details.", issue="INVALID_PARAMETER_SYNTAX",
                           description="; ".join(problems)), None
        return None, ("verify", (), body, raw_body)

    def check_token_request(self, headers, raw_body, where):
        problems = []
        if headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            problems.append("%s: body is not form-encoded" % where)
        if urllib.parse.parse_qsl(raw_body, keep_blank_values=True) != [("grant_type", "client_credentials")]:
            problems.append("%s: body must be grant_type=client_credentials, not %r" % (where, raw_body))
        self.problems.extend(problems)
        if problems:
            return (400, {"error": "unsupported_grant_type", "error_description": "; ".join(problems)}), None
        expected = "Basic " + base64.b64encode(("%s:%s" % (CLIENT_ID, CLIENT_SECRET)).encode()).decode()
        if headers.get("Authorization") != expected:
            return (401, {"error": "invalid_client", "error_description": "Client Authentication failed"}), None
        return None, ("token", (), None, False)

    def authorized(self, headers):
        auth = headers.get("Authorization") or ""
        expiry = self.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        return expiry is not None and expiry > time.time()

    def answer(self, status, order, where, full=True):
        """The order as PayPal shows it, checked against the spec's `order` schema."""
        view = {k: v for k, v in json.loads(json.dumps(order)).items() if not k.startswith("_")}
        if not full:
            view = {k: view[k] for k in ("id", "status", "links") if k in view}
        self.problems.extend("fake answered off-spec: " + p for p in check_value(view, "order", where, "read"))
        return status, view

    # The API.

    def api(self, context, headers):
        name, args, body, full = context
        if name == "token":
            self.issued += 1
            token = "A21AAfake%08dtoken" % self.issued
            self.tokens[token] = time.time() + self.token_lifetime
            return 200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token, "token_type": "Bearer",
                         "app_id": "APP-80W284485P519543T", "expires_in": self.token_lifetime, "nonce": "%s-fake" % now()}
        if name == "create":
            return self.create(body, full)
        if name == "verify":
            # As PayPal: the CRC32 of webhook_event exactly as it appears in
            # this request must be the delivered bytes' (re-encoded JSON fails).
            delivery = self.deliveries.get(body["transmission_id"])
            genuine = delivery is not None and delivery == (body["transmission_time"], body["transmission_sig"], body["webhook_id"],
                                                            zlib.crc32(raw_event(full)), body["cert_url"], body["auth_algo"])
            return 200, {"verification_status": "SUCCESS" if genuine else "FAILURE"}
        if name == "delete_token":
            if self.vaults.pop(args[0], None) is None:
                return failure(404, *NOT_FOUND, issue="INVALID_RESOURCE_ID", description="Specified resource ID does not exist.")
            return 204, None
        order = self.orders.get(args[0])
        if order is None:
            return failure(404, *NOT_FOUND, issue="INVALID_RESOURCE_ID", description="Specified resource ID does not exist.")
        if name == "get":
            return self.answer(200, order, "GET order")
        return self.capture(order, full)

    def create(self, body, full):
        oid = self.order_id()
        unit = body["purchase_units"][0]
        wallet = body.get("payment_source", {}).get("paypal")
        order = {
            "id": oid, "intent": body["intent"], "status": "CREATED", "create_time": now(),
            "purchase_units": [{
                "reference_id": unit.get("reference_id", "default"), "amount": unit["amount"],
                "payee": {"email_address": "merchant@example.com", "merchant_id": "FAKEMERCHANT2"},
                **{k: unit[k] for k in ("custom_id", "invoice_id", "description") if k in unit},
            }],
            "links": [{"href": "http://127.0.0.1:%d/v2/checkout/orders/%s" % (self.port, oid), "rel": "self", "method": "GET"}],
            "_vault": bool(wallet and wallet.get("attributes", {}).get("vault", {}).get("store_in_vault") == "ON_SUCCESS"),
        }
        self.orders[oid] = order
        if wallet and wallet.get("vault_id"):
            payer = self.vaults.get(wallet["vault_id"])
            if payer is None:
                del self.orders[oid]
                return failure(422, *UNPROCESSABLE, issue="PAYMENT_SOURCE_INFO_CANNOT_BE_VERIFIED",
                               description="The vault id is unknown or was deleted.")
            order["payment_source"] = {"paypal": dict(payer, attributes={"vault": {"id": wallet["vault_id"], "status": "VAULTED"}})}
            status = "DECLINED" if wallet["vault_id"] in self.declined else None
            self.settle(order, status)
            return self.answer(201, order, "POST orders (vault)", full)
        action = "payer-action" if wallet else "approve"
        if wallet:
            order["status"] = "PAYER_ACTION_REQUIRED"
            order["payment_source"] = {"paypal": {}}
        order["links"].append({"href": "http://127.0.0.1:%d/checkoutnow?token=%s" % (self.port, oid), "rel": action, "method": "GET"})
        return self.answer(201, order, "POST orders", full)

    def capture(self, order, full):
        if order["status"] == "COMPLETED":
            return failure(422, *UNPROCESSABLE, issue="ORDER_ALREADY_CAPTURED", description="Order already captured.")
        if order["status"] != "APPROVED":
            return failure(422, *UNPROCESSABLE, issue="ORDER_NOT_APPROVED", description="Payer has not yet approved the Order for payment.")
        if self.next_capture and self.next_capture[0] == "INSTRUMENT_DECLINED":
            self.next_capture.pop(0)
            return failure(422, *UNPROCESSABLE, issue="INSTRUMENT_DECLINED", description="The instrument presented was either declined by the processor or bank, or it can't be used for this payment.")
        self.settle(order, None)
        if order.pop("_vault", False) and order["purchase_units"][0]["payments"]["captures"][0]["status"] == "COMPLETED":
            vault_id = "VAULT%s" % order["id"][-8:]
            payer = {k: v for k, v in order["payment_source"]["paypal"].items() if k != "attributes"}
            customer = {"id": "CUST%s" % order["id"][-8:]}
            if self.late_vaults:
                # As PayPal may: the vault is APPROVED but its id comes later, in a
                # VAULT.PAYMENT-TOKEN.CREATED webhook (POST /_fake/webhook?type=VAULT.PAYMENT-TOKEN.CREATED).
                self.late_vaults -= 1
                self.pending_vaults[order["id"]] = (vault_id, payer, customer)
                order["payment_source"]["paypal"]["attributes"] = {"vault": {
                    "status": "APPROVED", "customer": customer,
                    "links": [{"href": "http://127.0.0.1:%d/v2/checkout/orders/%s" % (self.port, order["id"]), "rel": "up", "method": "GET"}]}}
            else:
                self.vaults[vault_id] = payer
                order["payment_source"]["paypal"]["attributes"] = {"vault": {
                    "id": vault_id, "status": "VAULTED", "customer": customer,
                    "links": [{"href": "http://127.0.0.1:%d/v3/vault/payment-tokens/%s" % (self.port, vault_id), "rel": "self", "method": "GET"}]}}
        return self.answer(201, order, "POST capture", full)

    def settle(self, order, status):
        """Captures the order's amount: COMPLETED unless scripted otherwise."""
        status = status or (self.next_capture.pop(0) if self.next_capture else "COMPLETED")
        status, _, reason = status.partition(":")
        unit = order["purchase_units"][0]
        capture = {"id": "CAP%s" % order["id"][-10:], "status": status, "amount": unit["amount"], "final_capture": True,
                   "create_time": now(), "update_time": now(),
                   "links": [{"href": "http://127.0.0.1:%d/v2/payments/captures/CAP%s" % (self.port, order["id"][-10:]), "rel": "self", "method": "GET"}]}
        capture.update({k: unit[k] for k in ("custom_id", "invoice_id") if k in unit})
        if status == "PENDING":
            capture["status_details"] = {"reason": reason or "PENDING_REVIEW"}
        unit["payments"] = {"captures": [capture]}
        order["status"] = "COMPLETED"
        self.captures[capture["id"]] = order["id"]

    def webhook(self, query):
        """A notification about an order (CHECKOUT.ORDER.*) or its capture (PAYMENT.CAPTURE.*),
        delivered to ?url= with PayPal's transmission headers. The signature is the fake's own
        (PayPal signs with a certificate); verify-webhook-signature accepts exactly what was sent."""
        order = self.orders[query["order"][0]]
        kind = query.get("type", ["CHECKOUT.ORDER.APPROVED"])[0]
        view = {k: v for k, v in json.loads(json.dumps(order)).items() if not k.startswith("_")}
        if kind == "VAULT.PAYMENT-TOKEN.CREATED":
            # The payment token PayPal made for the order's wallet (Payment Method Tokens v3 shape).
            vault_id, payer, customer = self.pending_vaults.pop(order["id"])
            self.vaults[vault_id] = payer
            resource, resource_type = {"id": vault_id, "customer": customer, "metadata": {"order_id": order["id"]},
                                       "payment_source": {"paypal": {"email_address": payer.get("email_address"),
                                                                     "usage_type": "MERCHANT", "customer_type": "CONSUMER"}},
                                       "links": [{"href": "http://127.0.0.1:%d/v3/vault/payment-tokens/%s" % (self.port, vault_id),
                                                  "rel": "self", "method": "GET"}]}, "payment_token"
        elif kind == "PAYMENT.CAPTURE.REFUNDED":
            resource, resource_type = view["purchase_units"][0]["payments"]["refunds"][-1], "refund"
        elif kind.startswith("PAYMENT.CAPTURE."):
            resource, resource_type = view["purchase_units"][0]["payments"]["captures"][0], "capture"
        else:
            resource, resource_type = view, "checkout-order"
        event = {"id": "WH-%s" % self.next_id("evt").upper(), "create_time": now(), "resource_type": resource_type,
                 "event_type": kind, "summary": "Fake %s" % kind, "resource_version": "2.0", "resource": resource,
                 "links": [{"href": "http://127.0.0.1:%d/v1/notifications/webhooks-events/x" % self.port, "rel": "self", "method": "GET"}]}
        transmission = self.next_id("tx")
        sent_at = now()
        webhook_id = query.get("webhook_id", ["WH1FAKE"])[0]
        cert = "https://api-m.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-fake"
        # Hex: the spec's transmission_sig pattern wants a word character first.
        # The bytes as PayPal sends them: its own key order (not sorted), its
        # spacing, empty objects; the signature covers their CRC32, so a
        # receiver that parses and re-serializes the event cannot verify it.
        event["resource"].setdefault("supplementary_data", {})
        raw = json.dumps(event, separators=(", ", ": ")).encode()
        signature = hmac.new(b"fake-paypal-key", ("%s|%s|%s|%d" % (
            transmission, sent_at, webhook_id, zlib.crc32(raw))).encode(), hashlib.sha256).hexdigest()
        self.deliveries[transmission] = (sent_at, signature, webhook_id, zlib.crc32(raw), cert, "SHA256withRSA")
        sent = "x" + signature[1:] if query.get("forge") == ["1"] else signature
        request = urllib.request.Request(query["url"][0], data=raw, method="POST", headers={
            "Content-Type": "application/json", "PAYPAL-AUTH-ALGO": "SHA256withRSA", "PAYPAL-CERT-URL": cert,
            "PAYPAL-TRANSMISSION-ID": transmission, "PAYPAL-TRANSMISSION-SIG": sent, "PAYPAL-TRANSMISSION-TIME": sent_at})
        return 200, {}, delivery(request)

    # Controls.

    def control(self, parts, query):
        if parts[:1] == ["orders"] and len(parts) == 3:
            order = self.orders.get(parts[1])
            if order is None:
                return 404, {"error": "no such order"}
            if parts[2] == "approve" and order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
                order["status"] = "APPROVED"
                order.setdefault("payment_source", {})["paypal"] = {
                    "email_address": "buyer@example.com", "account_id": payer_id(order["id"]), "account_status": "VERIFIED",
                    "name": {"given_name": "Jane", "surname": "Doe"}}
                order["links"] = [link for link in order["links"] if link["rel"] == "self"] + [
                    {"href": "http://127.0.0.1:%d/v2/checkout/orders/%s/capture" % (self.port, order["id"]), "rel": "capture", "method": "POST"}]
            elif parts[2] == "void":
                order["status"] = "VOIDED"
            elif parts[2] == "expire":
                del self.orders[parts[1]]
            return 200, {k: v for k, v in order.items() if not k.startswith("_")}
        if parts[:1] == ["refund"] and len(parts) == 2:
            # A refund of the order's capture (?value=10.00, else the rest).
            order = self.orders[parts[1]]
            unit = order["purchase_units"][0]
            capture = unit["payments"]["captures"][0]
            refunds = unit["payments"].setdefault("refunds", [])
            total = float(capture["amount"]["value"])
            done = sum(float(r["amount"]["value"]) for r in refunds)
            value = query.get("value", ["%.2f" % (total - done)])[0]
            refund = {"id": "REF%s%02d" % (order["id"][-8:], len(refunds)), "status": "COMPLETED",
                      "amount": {"currency_code": capture["amount"]["currency_code"], "value": value},
                      "create_time": now(), "update_time": now(), "note_to_payer": "Refunded by the merchant",
                      "links": [{"href": "http://127.0.0.1:%d/v2/payments/refunds/x" % self.port, "rel": "self", "method": "GET"}]}
            refund.update({k: capture[k] for k in ("custom_id", "invoice_id") if k in capture})
            refunds.append(refund)
            capture["status"] = "REFUNDED" if done + float(value) >= total else "PARTIALLY_REFUNDED"
            return 200, refund
        if parts == ["vault", "late"]:
            self.late_vaults += 1
            return 200, {}
        if parts[:1] == ["reverse"] and len(parts) == 2:
            # The payer disputes it with their bank: PayPal holds the captured funds
            # (status PENDING, reason CHARGEBACK; ?reason=BUYER_COMPLAINT for a PayPal dispute).
            capture = self.orders[parts[1]]["purchase_units"][0]["payments"]["captures"][0]
            capture["status"] = "PENDING"
            capture["status_details"] = {"reason": query.get("reason", ["CHARGEBACK"])[0]}
            return 200, capture
        if parts[:1] == ["reinstate"] and len(parts) == 2:
            # The dispute is decided for the merchant: the capture is COMPLETED again.
            capture = self.orders[parts[1]]["purchase_units"][0]["payments"]["captures"][0]
            capture["status"] = "COMPLETED"
            capture.pop("status_details", None)
            return 200, capture
        if parts[:1] == ["capture"]:
            reason = query.get("reason", [""])[0]
            self.next_capture.append(query.get("status", ["COMPLETED"])[0] + (":" + reason if reason else ""))
            return 200, {}
        if parts[:1] == ["captures"] and len(parts) == 3 and parts[2] == "complete":
            order = self.orders[self.captures[parts[1]]]
            order["purchase_units"][0]["payments"]["captures"][0]["status"] = "COMPLETED"
            order["purchase_units"][0]["payments"]["captures"][0].pop("status_details", None)
            return 200, {}
        if parts[:1] == ["charges"] and len(parts) == 1:
            return 200, [cid for cid, oid in self.captures.items()
                         if oid in self.orders and self.orders[oid]["purchase_units"][0]["payments"]["captures"][0]["status"] == "COMPLETED"]
        if parts[:1] == ["decline"] and len(parts) == 2:
            self.declined.add(parts[1])
            return 200, {}
        if parts[:1] == ["token"]:
            self.token_lifetime = int(query.get("expires_in", ["32400"])[0])
            return 200, {}
        if parts[:1] == ["revoke"]:
            self.tokens.clear()
            return 200, {}
        if parts[:1] == ["webhook"]:
            return self.webhook(query)
        if parts[:1] == ["vaults"]:
            return 200, sorted(self.vaults)
        if parts[:1] == ["tokens"]:
            return 200, self.issued
        if parts[:1] == ["orders"] and len(parts) == 1:
            return 200, [{k: v for k, v in o.items() if not k.startswith("_")} for o in self.orders.values()]
        return None


if __name__ == "__main__":
    PayPalFake().serve()
