internal import BillingCore
internal import BillingTransport
internal import Hummingbird
internal import Logging
internal import NIOCore
internal import ServiceLifecycle
internal import Synchronization

// The long-running parts of billingd, each a `Service` of the one
// `ServiceGroup` (`BillingApplication`), which starts them together and, on
// SIGTERM, SIGINT or `shutdown()`, stops them one by one in the reverse of
// their order there; a part that fails ends the group the same way.

/// The RPC server, bound before the group starts (a port in use fails the
/// start itself). At shutdown it stops taking connections and lets running
/// calls finish within the grace period.
struct RPCServerPart: Service {
    let server: TTRPCServer
    let grace: Duration

    func run() async {
        try? await gracefulShutdown()
        await server.shutdown(grace: grace)
    }
}

/// The poller, until shutdown.
struct PollerPart: Service {
    let poller: Poller

    func run() async {
        await cancelWhenGracefulShutdown { await poller.run() }
    }
}

/// The event hub, until shutdown: ending it ends every watch at once, with
/// where to resume (a watch never finishes by itself, so waiting for it
/// would only delay the stop).
struct EventHubPart: Service {
    let hub: EventHub

    func run() async {
        await cancelWhenGracefulShutdown { await hub.run() }
    }
}

/// The first thing a shutdown does: health says NOT_SERVING, so load
/// balancers send no new calls while the rest stops.
struct HealthAnnouncement: Service {
    let health: HealthService

    func run() async {
        try? await gracefulShutdown()
        health.setAllNotServing()
    }
}

/// A Hummingbird application (the webhook endpoint, the sandbox's page) and
/// the port it listens on, known once it does.
struct HTTPPart: Sendable {
    let application: Application<RouterResponder<BasicRequestContext>>
    let listening: Listening

    /// - Parameters:
    ///   - idleTimeout: how long a connection may send nothing before it is closed.
    init(router: Router<BasicRequestContext>, host: String, port: Int, name: String, idleTimeout: TimeAmount,
         group: any EventLoopGroup, logger: Logger) {
        let listening = Listening()
        self.listening = listening
        application = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: name),
            onServerRunning: { channel in listening.listened(channel.localAddress?.port ?? port) },
            eventLoopGroupProvider: .shared(group), logger: logger)
    }
}

/// A port known once its server listens, or the reason it never will.
final class Listening: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Int, any Error>])
        case listening(Int)
        case failed(any Error)
    }

    private let state = Mutex(State.waiting([]))

    func listened(_ port: Int) {
        resolve(.listening(port))
    }

    func failed(_ error: any Error) {
        resolve(.failed(error))
    }

    /// The port, once listening; throws if the server failed first.
    func port() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let now = state.withLock { state -> Result<Int, any Error>? in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                case .listening(let port): return .success(port)
                case .failed(let error): return .failure(error)
                }
            }
            if let now { continuation.resume(with: now) }
        }
    }

    private func resolve(_ final: State) {
        let (waiters, result) = state.withLock { state -> ([CheckedContinuation<Int, any Error>], Result<Int, any Error>?) in
            guard case .waiting(let waiters) = state else { return ([], nil) }
            state = final
            switch final {
            case .listening(let port): return (waiters, .success(port))
            case .failed(let error): return (waiters, .failure(error))
            case .waiting: return ([], nil)
            }
        }
        if let result { for waiter in waiters { waiter.resume(with: result) } }
    }
}
