internal import BillingCore
internal import BillingTransport
internal import Hummingbird
internal import NIOCore

/// `GET /metrics`: the gauges read now (connections, watchers, the poller's
/// backlog), then every metric in Prometheus's text format. Anything else
/// on the port is 404, another method on the path 405.
enum MetricsRoutes {
    static func router(
        _ metrics: BillingMetrics,
        server: TTRPCServer,
        hub: EventHub,
        store: any BillingStore,
        clock: any BillingClock
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ in
            let counts = server.admission.counts
            var snapshot = BillingMetrics.Snapshot(
                connections: (counts.unauthenticated, counts.privileged, counts.admitted - counts.privileged),
                subscribers: hub.subscriberCount,
                dueNow: 0,
                oldestDueLag: .zero
            )
            // The database unreadable for a moment leaves the backlog at 0 for
            // this scrape; the storage error counts show why.
            if let backlog = try? await store.pollerBacklog() {
                snapshot.dueNow = backlog.due
                snapshot.oldestDueLag = .milliseconds(backlog.oldestDueMs.map { max(0, clock.nowMs - $0) } ?? 0)
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.scrape(snapshot)))
            )
        }
        for method in [HTTPRequest.Method.head, .post, .put, .delete, .patch, .options, .trace] {
            router.on("/metrics", method: method) { _, _ in
                Response(status: .methodNotAllowed)
            }
        }
        return router
    }
}
