import BillingAPI
import BillingMessages
import BillingRPC
import BillingTLS
import BillingTestSupport
import BillingTransport
import Foundation
import NIOPosix
import Testing

/// Clients that know only ttrpc: containerd's own Go client (Debian's
/// golang-github-containerd-ttrpc-dev, ttrpc 1.1: unary only) with Go's TLS,
/// and a streaming client written in Python from PROTOCOL.md alone.
/// deploy/setup installs Go and the ttrpc sources.
@Suite struct StockClientInteropTests {
    static let interop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop")

    /// Builds the Go client once per test process.
    static let goClient = Task<Result<String, Failure>, Never> {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ttrpc-go-client-\(getpid())").path
        let result = await run(
            "/usr/bin/go",
            ["build", "-o", output, interop.appendingPathComponent("ttrpc-go-client/main.go").path],
            environment: [
                "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
                "GOCACHE": NSTemporaryDirectory() + "billing-gocache",
                "HOME": NSTemporaryDirectory(), "PATH": "/usr/bin:/bin",
            ]
        )
        guard result.status == 0 else {
            return .failure(Failure(description: "go build failed (run deploy/setup): \(result.output)"))
        }
        return .success(output)
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Runs a process to its end; standard error merged into its output.
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) async -> (status: Int32, output: String) {
        let outcome = await ChildProcess.run(executable, arguments, environment: environment, mergingErrors: true)
        return (outcome.status, outcome.outputText)
    }

    @Test func goTTRPCClientCallsUnaryMethods() async throws {
        let build = await Self.goClient.value
        let client = try build.get()
        let f = try await TransportFixture(extraServices: { [HealthService(services: ["billing.v1.Balance"])] })
        func call(_ service: String, _ method: String, _ payload: [UInt8]) async -> String {
            await Self.run(
                client,
                [
                    "127.0.0.1:\(f.port)", "\(f.directory)/ca.pem", "\(f.directory)/internal.pem",
                    "\(f.directory)/internal-key.pem",
                    "localhost", service, method, payload.map { String(format: "%02x", $0) }.joined(),
                ]
            ).output
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // HealthCheckRequest{service: "billing.v1.Balance"} → HealthCheckResponse{status: SERVING} = 08 01.
        let request = try GrpcHealthV1.HealthCheckRequest.serviceNamed("billing.v1.Balance").serializedBytes()
        #expect(await call("grpc.health.v1.Health", "Check", request) == "ok 0801")
        #expect(
            await call(
                "grpc.health.v1.Health",
                "Check",
                try GrpcHealthV1.HealthCheckRequest.serviceNamed("nope").serializedBytes()
            )
                == "error 5 unknown service nope"
        )
        #expect(await call("no.Such", "Method", []).hasPrefix("error 12 "))
        await f.stop()
    }

    @Test func specOnlyPythonClientFollowsAServerStreamToItsEnd() async throws {
        let f = try await TransportFixture()
        let request = try GrpcHealthV1.HealthCheckRequest.serviceNamed("count:3").serializedBytes()
        let result = await Self.run(
            "/usr/bin/python3",
            [
                Self.interop.appendingPathComponent("ttrpc_stream_client.py").path, "127.0.0.1", "\(f.port)",
                "\(f.directory)/ca.pem",
                "\(f.directory)/internal.pem", "\(f.directory)/internal-key.pem", "localhost", "grpc.health.v1.Health",
                "Watch",
                request.map { String(format: "%02x", $0) }.joined(),
            ]
        )
        #expect(result.status == 0, "\(result.output)")
        // Statuses 1000, 1001, 1002 (the messages' indexes): 08 e8 07, 08 e9 07, 08 ea 07.
        #expect(result.output.split(separator: "\n") == ["data 08e807", "data 08e907", "data 08ea07", "end ok"])

        let failing = await Self.run(
            "/usr/bin/python3",
            [
                Self.interop.appendingPathComponent("ttrpc_stream_client.py").path, "127.0.0.1", "\(f.port)",
                "\(f.directory)/ca.pem",
                "\(f.directory)/internal.pem", "\(f.directory)/internal-key.pem", "localhost", "grpc.health.v1.Health",
                "Nope", "",
            ]
        )
        #expect(failing.output.hasPrefix("end status 12 "), "\(failing.output)")
        await f.stop()
    }
}
