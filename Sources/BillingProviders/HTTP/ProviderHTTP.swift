internal import Foundation

#if canImport(FoundationNetworking)
internal import FoundationNetworking
#endif

/// HTTP for the payment-system adapters, over Foundation's URLSession (the
/// system libcurl and OpenSSL): connection reuse, timeouts, and retries with
/// backoff for what retrying can fix (network errors, 409, 429, 5xx). A 4xx is
/// returned to the adapter, which decides what it means. Requests carry
/// idempotency keys, so a retry never doubles a charge.
///
/// Secrets travel in headers only; nothing here logs or echoes a request.
struct ProviderHTTP: Sendable {
    let session: URLSession
    let maxAttempts: Int
    let baseDelay: Duration
    /// Answers here are a few KiB; anything near this is not one we understand.
    static let maxBodyBytes = 1 << 20

    struct Response {
        let status: Int
        let body: Data
        /// The provider's id of the request (Stripe `Request-Id`, PayPal
        /// `Paypal-Debug-Id`), kept for support cases.
        let requestID: String?
    }

    init(timeout: Duration, maxAttempts: Int = 3, baseDelay: Duration = .milliseconds(200)) {
        let configuration = URLSessionConfiguration.ephemeral
        // Whole seconds, at least 1: Linux's URLSession hands timeouts to
        // libcurl in whole seconds, and a fraction below 1 fails at once.
        let seconds = max(
            1,
            (Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18).rounded(.up)
        )
        configuration.timeoutIntervalForRequest = seconds
        configuration.timeoutIntervalForResource = seconds * Double(maxAttempts)
        configuration.httpMaximumConnectionsPerHost = 8
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        session = URLSession(configuration: configuration)
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
    }

    func send(_ request: URLRequest, requestIDHeader: String) async throws(ProviderError) -> Response {
        var attempt = 0
        while true {
            attempt += 1
            let data: Data
            let http: HTTPURLResponse
            do {
                let (body, response) = try await Self.exchange(session, request)
                guard let response = response as? HTTPURLResponse else {
                    throw ProviderError.malformed("not an HTTP response", requestID: nil)
                }
                data = body
                http = response
            } catch let error as ProviderError {
                throw error
            } catch {
                // Timeout, refused, reset: the request may or may not have
                // arrived; the idempotency key makes sending it again safe.
                if attempt < maxAttempts {
                    await backoff(attempt, retryAfter: nil)
                    continue
                }
                throw .unavailable("\(request.url?.host ?? "provider"): \((error as NSError).localizedDescription)")
            }
            let requestID = http.value(forHTTPHeaderField: requestIDHeader)
            guard data.count <= Self.maxBodyBytes else {
                throw .malformed("the answer is \(data.count) bytes, over \(Self.maxBodyBytes)", requestID: requestID)
            }
            // 409: the same idempotency key is still being processed (our
            // poller and a caller starting one payment at once); asking
            // again later gets the first request's answer.
            if http.statusCode == 409 || http.statusCode == 429 || http.statusCode >= 500 {
                // A stored answer replayed for the idempotency key (Stripe keeps
                // a 5xx for 24 h): asking again now only replays it. Unknown,
                // never a refusal: the work may have been done.
                let replayed = http.value(forHTTPHeaderField: "Idempotent-Replayed") == "true"
                if attempt < maxAttempts && !replayed {
                    await backoff(
                        attempt,
                        retryAfter: http.value(forHTTPHeaderField: "Retry-After").flatMap(Double.init)
                    )
                    continue
                }
                throw .unavailable(
                    "HTTP \(http.statusCode)\(replayed ? " (replayed for its idempotency key)" : "") after \(attempt) attempts"
                        + (requestID.map { " (request \($0))" } ?? "")
                )
            }
            return Response(status: http.statusCode, body: data, requestID: requestID)
        }
    }

    /// One request, through the completion-handler API on purpose: the async
    /// `data(for:)` cancels its URLSessionTask when the calling task is
    /// cancelled (a caller's deadline, billingd stopping), and Linux's
    /// FoundationNetworking can then trap ("a task that is not in the
    /// registry") when the cancel races the task's end: it took a whole test
    /// process down. A request once sent finishes or times out on its own
    /// (`timeoutIntervalForRequest`); its answer is simply not waited for
    /// longer than that, and its idempotency key makes a later retry safe.
    private static func exchange(_ session: URLSession, _ request: URLRequest) async throws -> (Data, URLResponse) {
        try await withCheckedThrowingContinuation { continuation in
            session.dataTask(with: request) { data, response, error in
                if let error {
                    continuation.resume(throwing: error)
                } else if let response {
                    continuation.resume(returning: (data ?? Data(), response))
                } else {
                    continuation.resume(throwing: URLError(.badServerResponse))
                }
            }.resume()
        }
    }

    /// 200 ms, 400 ms, 800 ms … or what Retry-After asks, at most 5 s.
    private func backoff(_ attempt: Int, retryAfter: Double?) async {
        let delay = retryAfter.map { Duration.seconds(min($0, 5)) } ?? baseDelay * (1 << (attempt - 1))
        try? await Task.sleep(for: min(delay, .seconds(5)))
    }

    /// The body as `T` (the payment system's JSON, snake_case keys spelled
    /// out in `T`'s coding keys), or `.malformed` with the request id.
    static func decode<T: Decodable>(_ type: T.Type, _ response: Response) throws(ProviderError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw .malformed(
                "the body is not \(T.self) JSON (HTTP \(response.status)): \(Self.describe(error))",
                requestID: response.requestID
            )
        }
    }

    /// Which field broke decoding, without the payment system's values.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "unreadable" }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let context): return "\(path(context)) has the wrong type"
        case .valueNotFound(_, let context): return "\(path(context)) is null"
        case .keyNotFound(let key, let context):
            return "\((path(context).isEmpty ? "" : path(context) + ".") + key.stringValue) is missing"
        case .dataCorrupted: return "not JSON"
        @unknown default: return "unreadable"
        }
    }
}

/// `application/x-www-form-urlencoded` with Stripe's bracketed keys.
enum FormEncoding {
    static func encode(_ pairs: [(String, String)]) -> Data {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let text = pairs.map { key, value in
            (key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key) + "="
                + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
        }.joined(separator: "&")
        return Data(text.utf8)
    }
}
