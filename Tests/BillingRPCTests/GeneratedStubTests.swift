import BillingAPI
import BillingMessages
import BillingRPC
import Testing

/// A health service that answers from a fixed table: enough to drive the
/// generated server protocol and client through a router.
private struct TableHealth: GrpcHealthV1.HealthService {
    let statuses: [String: GrpcHealthV1.HealthCheckResponse.ServingStatus]

    func check(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext
    ) async throws -> GrpcHealthV1.HealthCheckResponse {
        guard let status = statuses[request.service] else {
            throw RPCError(.notFound, "unknown service")
        }
        var response = GrpcHealthV1.HealthCheckResponse()
        response.status = status
        return response
    }

    func watch(
        _ request: GrpcHealthV1.HealthCheckRequest,
        context: ServerContext,
        stream: ServerStreamWriter<GrpcHealthV1.HealthCheckResponse>
    ) async throws {
        for status in [GrpcHealthV1.HealthCheckResponse.ServingStatus.notServing, .serving] {
            var response = GrpcHealthV1.HealthCheckResponse()
            response.status = status
            try await stream.write(response)
        }
    }
}

@Suite struct GeneratedStubTests {
    let client = GrpcHealthV1.HealthClient(
        transport: InProcessTransport(
            router: MethodRouter(services: [TableHealth(statuses: ["": .serving, "billing.v1.Balance": .notServing])])
        )
    )

    @Test func unaryCallReachesTheHandler() async throws {
        var request = GrpcHealthV1.HealthCheckRequest()
        request.service = "billing.v1.Balance"
        #expect(try await client.check(request).status == .notServing)
    }

    @Test func handlerErrorArrivesAsItsStatus() async throws {
        var request = GrpcHealthV1.HealthCheckRequest()
        request.service = "nope"
        await #expect(throws: RPCError(.notFound, "unknown service")) {
            try await client.check(request)
        }
    }

    @Test func serverStreamDeliversEveryMessageInOrder() async throws {
        var seen: [GrpcHealthV1.HealthCheckResponse.ServingStatus] = []
        for try await response in try await client.watch(GrpcHealthV1.HealthCheckRequest()) {
            seen.append(response.status)
        }
        #expect(seen == [.notServing, .serving])
    }

    @Test func unknownServiceAndMethodAreUnimplemented() async throws {
        let transport = client.transport
        await #expect(throws: RPCError(.unimplemented, "unknown service \"x.Y\"")) {
            try await transport.unary(
                MethodDescriptor(service: "x.Y", method: "Z", kind: .unary),
                request: [],
                options: CallOptions()
            )
        }
        await #expect(throws: RPCError(.unimplemented, "unknown method \"Nope\" of grpc.health.v1.Health")) {
            try await transport.unary(
                MethodDescriptor(service: "grpc.health.v1.Health", method: "Nope", kind: .unary),
                request: [],
                options: CallOptions()
            )
        }
    }

    @Test func requestThatIsNotTheMethodsTypeIsInvalidArgument() async throws {
        let transport = client.transport
        await #expect(throws: RPCError.self) {
            // Field 1 as a varint: not a HealthCheckRequest.
            try await transport.unary(GrpcHealthV1.HealthMethods.check, request: [0x08, 0x01], options: CallOptions())
        }
        do {
            _ = try await transport.unary(
                GrpcHealthV1.HealthMethods.check,
                request: [0x08, 0x01],
                options: CallOptions()
            )
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
        }
    }

    @Test func everyServiceHasItsMethodsDescribed() {
        #expect(BillingV1.BalanceMethods.all.count == 13)
        #expect(BillingV1.BalanceMethods.watchPayments.kind == .serverStreaming)
        #expect(BillingV1.BalanceMethods.createTopUp.description == "/billing.v1.Balance/CreateTopUp")
        #expect(BillingV1.RenewalMethods.all.count == 6)
        #expect(BillingV1.MigrationPaymentMethods.all.count == 3)
        #expect(BillingV1.PaymentMethodsMethods.all.count == 4)
        #expect(BillingV1.AccountsMethods.all.count == 3)
    }

    @Test func aBadRequestIsInvalidArgumentKeepingItsCauseAndSizeIsBoundedOnEveryPath() async throws {
        let router = MethodRouter(services: [TableHealth(statuses: [:])])
        let transport = InProcessTransport(router: router, maxRequestBytes: 8)
        let method = GrpcHealthV1.HealthMethods.check
        // Not protobuf: field 1 as a varint where a string is expected, then garbage.
        do {
            _ = try await transport.unary(method, request: [0x08, 0xFF, 0xFF], options: CallOptions())
            Issue.record("a bad request was taken")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(
                error.cause is MessageError,
                "the decoder's own error stays with it: \(String(describing: error.cause))"
            )
            #expect(error == RPCError(error.code, error.message), "equality is by code and message alone")
        }
        // Over the connection's limit: refused before decoding.
        var big = GrpcHealthV1.HealthCheckRequest()
        big.service = String(repeating: "x", count: 32)
        do {
            _ = try await transport.unary(method, request: try big.serializedBytes(), options: CallOptions())
            Issue.record("an oversized request was taken")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.cause as? MessageError == .tooLarge(bytes: 34, limit: 8))
        }
    }
}
