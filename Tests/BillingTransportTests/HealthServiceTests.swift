import BillingAPI
import BillingMessages
import BillingRPC
import BillingTransport
import Testing

@Suite struct HealthServiceTests {
    let health = HealthService(services: ["billing.v1.Balance"])

    var client: GrpcHealthV1.HealthClient {
        GrpcHealthV1.HealthClient(transport: InProcessTransport(router: MethodRouter(services: [health])))
    }

    @Test func checkReportsEachServiceAndRefusesUnknownOnes() async throws {
        #expect(try await client.check(.serviceNamed("")).status == .serving)
        health.setStatus(.notServing, for: "billing.v1.Balance")
        #expect(try await client.check(.serviceNamed("billing.v1.Balance")).status == .notServing)
        await #expect(throws: RPCError(.notFound, "unknown service nope")) {
            try await client.check(.serviceNamed("nope"))
        }
    }

    @Test func watchSendsTheCurrentStatusThenChanges() async throws {
        let stream = try await client.watch(.serviceNamed("billing.v1.Balance"))
        var iterator = stream.makeAsyncIterator()
        #expect(try await iterator.next()?.status == .serving)
        health.setAllNotServing()
        #expect(try await iterator.next()?.status == .notServing)
        stream.cancel()
    }
}
