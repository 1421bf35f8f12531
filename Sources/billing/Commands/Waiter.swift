import ArgumentParser
import BillingAPI
import BillingMessages
import Foundation

/// Follows one payment to Paid or Cancelled: a spinner with the status and
/// the elapsed time on a terminal, a line per change otherwise.
struct Waiter {
    let clients: Clients
    let connection: ConnectionOptions
    /// Ask the payment system directly this often (the server's poller may
    /// check only every minute).
    static let refreshEvery: Duration = .seconds(2)
    static let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

    func wait(for id: String, timeout: Duration = .seconds(900)) async throws {
        let start = ContinuousClock.now
        var lastRefresh = start
        var lastStatus: BillingV1.PaymentStatus?
        var frame = 0
        var get = BillingV1.GetPaymentRequest()
        get.paymentId = id
        var refresh = BillingV1.RefreshPaymentRequest()
        refresh.paymentId = id
        let spinner = Output.stdoutIsTerminal && !connection.json
        while true {
            var payment = try await clients.balance.getPayment(get, options: connection.callOptions)
            if payment.status == .new, ContinuousClock.now - lastRefresh >= Self.refreshEvery {
                lastRefresh = ContinuousClock.now
                payment =
                    (try? await clients.balance.refreshPayment(refresh, options: connection.callOptions)) ?? payment
            }
            let elapsed = Int((ContinuousClock.now - start).components.seconds)
            if spinner {
                let mark =
                    payment.status == .new
                    ? Self.frames[frame % Self.frames.count] : (payment.status == .paid ? "✓" : "✗")
                Output.prompt("\r\u{1B}[K\(mark) \(id) \(Output.status(payment.status)) \(elapsed)s")
                frame += 1
            } else if payment.status != lastStatus && !connection.json {
                Output.line("\(id) \(Output.status(payment.status))")
            }
            lastStatus = payment.status
            if payment.status != .new {
                if spinner { Output.prompt("\n") }
                if connection.json { Output.json(PaymentView(payment)) }
                if payment.status == .cancelled { throw cancelled(payment) }
                return
            }
            guard ContinuousClock.now - start < timeout else {
                if spinner { Output.prompt("\n") }
                throw UsageError(
                    "gave up waiting after \(timeout); the payment is still New (billing payment show \(id) --wait)"
                )
            }
            try await Task.sleep(for: .milliseconds(spinner ? 200 : 500))
        }
    }
}
