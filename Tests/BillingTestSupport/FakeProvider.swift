import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A fake payment system from Tests/Interop (`fake_stripe.py`,
/// `fake_paypal.py`) as a child process on a loopback port. It checks every
/// request against the digest of the vendor's OpenAPI description
/// (`Tests/Interop/vendor/`, made by `codegen/vendor-digest`); tests read what broke it
/// with `problems()` and require none.
public final class FakeProvider: Sendable {
    static let interop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop")

    /// The client credentials fake_paypal.py accepts.
    public static let paypalClientID = "billingd-client"
    public static let paypalClientSecret = "billingd-secret"
    /// A key of the form fake_stripe.py accepts.
    public static let stripeSecretKey = "sk_test_billingd"

    let process: ChildProcess
    public let port: Int
    /// The interpreter's own pid (a launcher such as pyenv's shim may sit between).
    let pid: Int32
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public static func stripe() async throws -> FakeProvider { try await FakeProvider(script: "fake_stripe.py") }
    public static func paypal() async throws -> FakeProvider { try await FakeProvider(script: "fake_paypal.py") }

    init(script: String) async throws {
        let out = try DescriptorPipe()
        // Standard error to /dev/null, not the test's own: nothing of the fake
        // may outlive the test holding the runner's pipes open.
        let process = try await ChildProcess(
            "/usr/bin/env",
            ["python3", Self.interop.appendingPathComponent(script).path],
            standardOutput: out.writing.fileDescriptor
        )
        try out.writing.close()
        self.process = process
        // Read the "listening PORT PID" line on a thread of its own (it blocks).
        let line = await withCheckedContinuation { continuation in
            onOwnThread {
                var bytes = Data()
                while let byte = try? out.reading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
                    bytes += byte
                }
                continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
            }
        }
        let fields = line.split(separator: " ")
        guard fields.count == 3, fields[0] == "listening", let port = Int(fields[1]), let pid = Int32(fields[2]) else {
            process.terminate()
            throw Failure(
                description:
                    "\(script) did not start: \(line) (needs python3 with openapi-schema-validator; run deploy/setup)"
            )
        }
        self.port = port
        self.pid = pid
    }

    public func stop() {
        kill(pid, SIGKILL)
        process.terminate()
    }

    /// A test control under /_fake/ (see the script's header).
    @discardableResult
    public func control(_ path: String, method: String = "POST") async throws -> Any {
        var request = URLRequest(url: URL(string: baseURL + "/_fake/" + path)!)
        request.httpMethod = method
        // The completion-handler API: FoundationNetworking on Linux can trap
        // when the async API cancels a finishing task (see ProviderHTTP).
        let data: Data = try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, _, error in
                if let error {
                    continuation.resume(throwing: error)
                } else {
                    continuation.resume(returning: data ?? Data())
                }
            }.resume()
        }
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// Every request that broke the OpenAPI description; tests require none.
    public func problems() async throws -> [String] {
        try await control("problems", method: "GET") as? [String] ?? ["problems not readable"]
    }

    /// Every API request: method, path, idempotency_key, body, headers.
    public func requests() async throws -> [[String: Any]] {
        try await control("requests", method: "GET") as? [[String: Any]] ?? []
    }

    /// Money taken: Stripe's charges, PayPal's completed captures.
    public func charges() async throws -> [String] {
        try await control("charges", method: "GET") as? [String] ?? []
    }
}
