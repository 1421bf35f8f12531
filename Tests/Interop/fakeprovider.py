"""What the fake payment systems (fake_stripe.py, fake_paypal.py) share.

A fake is a threaded HTTP/1.1 server on 127.0.0.1 with state kept across
calls under one lock. Every API request is recorded; the fake's own checks
(the vendor's OpenAPI description) add to `problems`, which tests read at
GET /_fake/problems and require to be empty.

Controls every fake has, under /_fake/ (never part of a vendor's API):
  POST /_fake/fail?status=429&count=2   the next N API requests answer with that status (before any work)
  POST /_fake/fail?status=500&after=1   the next API request is carried out, then answered with that status
                                        (Stripe keeps that answer under the idempotency key and replays it)
  POST /_fake/malformed?count=1         the next N answers are not JSON
  POST /_fake/oversized?count=1         the next N answers are 2 MiB of valid JSON
  POST /_fake/mistyped?field=status     the next answer is itself, with that top-level field a number
  POST /_fake/delay?ms=2000&count=1     the next N requests are processed, then answered late
  GET  /_fake/problems, /_fake/requests
"""
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Fake:
    """One vendor. Subclasses implement `api` and `control`."""

    request_id_header = "Request-Id"
    idempotency_header = "Idempotency-Key"

    def __init__(self):
        self.lock = threading.Lock()
        self.problems = []
        self.requests = []
        self.fail = []
        self.fail_after = []
        self.malformed = 0
        self.oversized = 0
        self.mistyped = []
        self.delays = []
        self.counter = 0
        # idempotency key -> ((path, body), status, answer)
        self.idempotency = {}

    def next_id(self, prefix):
        self.counter += 1
        return "%s_fake%06d" % (prefix, self.counter)

    # Subclasses.
    def check(self, method, path, query_pairs, headers, raw_body):
        """Authentication, routing and validation: an error answer, or None and a context for `api`."""
        raise NotImplementedError

    def api(self, context, headers):
        raise NotImplementedError

    def control(self, parts, query):
        return None

    def scripted_error(self, status):
        return status, {"error": {"type": "api_error", "message": "Scripted failure %d" % status}}

    def remembers(self, method, status):
        return method == "POST" and status < 500

    def common_control(self, parts, query):
        count = int(query.get("count", ["1"])[0])
        if parts[:1] == ["fail"]:
            queue = self.fail_after if query.get("after") == ["1"] else self.fail
            queue.extend([int(query.get("status", ["500"])[0])] * count)
            return 200, {}
        if parts[:1] == ["delay"]:
            self.delays.extend([int(query.get("ms", ["1000"])[0])] * count)
            return 200, {}
        if parts[:1] == ["malformed"]:
            self.malformed += count
            return 200, {}
        if parts[:1] == ["oversized"]:
            self.oversized += count
            return 200, {}
        if parts[:1] == ["mistyped"]:
            self.mistyped.extend([query.get("field", ["id"])[0]] * count)
            return 200, {}
        if parts[:1] == ["problems"]:
            return 200, self.problems
        if parts[:1] == ["requests"]:
            return 200, self.requests
        return 404, {"error": "unknown control"}

    def handle(self, method, target, headers, raw_body):
        """(status, body or None, raw bytes or None, request id, delay in ms, extra headers)."""
        url = urllib.parse.urlsplit(target)
        query_pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        if url.path.startswith("/_fake/"):
            parts = url.path.strip("/").split("/")[1:]
            query = urllib.parse.parse_qs(url.query)
            with self.lock:
                answer = self.control(parts, query) or self.common_control(parts, query)
            # A control may leave work that calls out (a webhook delivery,
            # which calls back into this fake): done without the lock.
            if len(answer) == 3:
                answer = answer[2]()
            return answer[0], answer[1], None, None, 0, {}
        with self.lock:
            request_id = self.next_id("req")
            key = headers.get(self.idempotency_header)
            self.requests.append({"method": method, "path": url.path, "idempotency_key": key, "body": raw_body,
                                  "headers": {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"}})
            refused, context = self.check(method, url.path, query_pairs, headers, raw_body)
            if refused:
                return refused[0], refused[1], None, request_id, 0, {}
            if self.fail:
                status, body = self.scripted_error(self.fail.pop(0))
                return status, body, None, request_id, 0, {}
            if self.malformed:
                self.malformed -= 1
                return 200, None, b"{not json", request_id, 0, {}
            if self.oversized:
                self.oversized -= 1
                return 200, None, b'{"padding": "' + b"x" * (2 << 20) + b'"}', request_id, 0, {}
            if method == "POST" and key:
                seen = self.idempotency.get(key)
                if seen:
                    if seen[0] != (url.path, raw_body):
                        return 400, self.reused_key_error(), None, request_id, 0, {}
                    return seen[1], seen[2], None, request_id, 0, {"Idempotent-Replayed": "true"}
            status, result = self.api(context, headers)
            failed_after_work = bool(self.fail_after)
            if failed_after_work:
                # Done, but the answer is an error (a crash after the work),
                # and that answer is what the key replays from now on.
                status, result = self.scripted_error(self.fail_after.pop(0))
            if key and (failed_after_work or self.remembers(method, status)):
                self.idempotency[key] = ((url.path, raw_body), self.replayed_status(status), result)
            if self.mistyped and isinstance(result, dict):
                # After remembering: only this answer is broken, not the work.
                result = dict(result)
                result[self.mistyped.pop(0)] = 12345
            delay = self.delays.pop(0) if self.delays else 0
        # Processed (and remembered) before the late answer: a client that
        # timed out and retries must get the same result, not a second one.
        return status, result, None, request_id, delay, {}

    def reused_key_error(self):
        return {"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}}

    def replayed_status(self, status):
        return status

    def serve(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def any(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(length).decode() if length else ""
                status, body, raw, request_id, delay, extra = fake.handle(method, self.path, self.headers, raw_body)
                if delay:
                    time.sleep(delay / 1000)
                data = b"" if status == 204 else raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if request_id:
                    self.send_header(fake.request_id_header, request_id)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.any("GET")

            def do_POST(self):
                self.any("POST")

            def do_DELETE(self):
                self.any("DELETE")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print("listening %d %d" % (server.server_address[1], os.getpid()), flush=True)
        server.serve_forever()


def delivery(request):
    """A POST to make once the fake's lock is released (a control's third element): the
    receiver may call back into the fake. Answers the receiver's status and body."""
    def deliver():
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return 200, {"status": answer.status, "body": answer.read().decode()}
        except urllib.error.HTTPError as refused:
            return 200, {"status": refused.code, "body": refused.read().decode()}
    return deliver


def unfold(pairs):
    """a[b][0][c]=v -> {"a": {"b": [{"c": "v"}]}} (lists from numeric keys)."""
    root = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list) and part == "":
                # key[] : append
                if last:
                    node.append(value)
                else:
                    node.append([] if nxt.isdigit() or nxt == "" else {})
                    node = node[-1]
                continue
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if last:
                    node[index] = value
                else:
                    if node[index] is None:
                        node[index] = [] if nxt.isdigit() or nxt == "" else {}
                    node = node[index]
            else:
                if part == "" and isinstance(node, dict):
                    raise ValueError("empty key in " + key)
                if last:
                    if part in node and isinstance(node[part], list):
                        node[part].append(value)
                    else:
                        node[part] = value
                else:
                    if part not in node:
                        node[part] = [] if (nxt.isdigit() or nxt == "") else {}
                    node = node[part]
    return root
