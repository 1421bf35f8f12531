import BillingCore
import Synchronization
import Testing

/// `CommitSignal`'s waits on a manual clock: commits wake every waiter, each
/// timeout ends its own wait, and all timeouts share one sleep.
@Suite struct CommitSignalTests {
    /// What the waiting tasks report.
    private final class Record: Sendable {
        let values = Mutex<[Int]>([])
    }

    /// Waits (30 s at most) until `condition` holds; the #expect after it says what failed.
    private func until(_ condition: () -> Bool) async throws {
        let patience = ContinuousClock.now.advanced(by: .seconds(30))
        while !condition(), ContinuousClock.now < patience { try await Task.sleep(for: .milliseconds(2)) }
    }

    @Test func aCommitWakesEveryWaiterWithTheNewGeneration() async throws {
        let signal = CommitSignal()
        let clock = ManualClock()
        let seen = signal.generation
        let woken = Record()
        let waits = (0..<5).map { index in
            Task {
                let generation = await signal.wait(after: seen, timeout: .seconds(60), clock: clock)
                woken.values.withLock { $0.append(index) }
                return generation
            }
        }
        try await until { clock.sleepers == 1 }
        signal.committed()
        for wait in waits { #expect(await wait.value == seen + 1) }
        #expect(woken.values.withLock { $0 }.count == 5)
        // A wait after a generation already passed returns at once.
        #expect(await signal.wait(after: seen, timeout: .seconds(60), clock: clock) == seen + 1)
    }

    @Test func eachTimeoutEndsItsOwnWaitAndAllShareOneSleep() async throws {
        let signal = CommitSignal()
        let clock = ManualClock()
        let ended = Record()
        func wait(_ seconds: Int) -> Task<Void, Never> {
            Task {
                _ = await signal.wait(after: signal.generation, timeout: .seconds(seconds), clock: clock)
                ended.values.withLock { $0.append(seconds) }
            }
        }
        // The first arms the timer; later deadlines do not add a sleep.
        let first = wait(10)
        try await until { clock.sleepers == 1 }
        let later = [wait(20), wait(30), wait(40)]
        try await Task.sleep(for: .milliseconds(20))
        #expect(clock.sleepers == 1)
        // An earlier deadline arms one more.
        let earlier = wait(5)
        try await until { clock.sleepers == 2 }

        clock.advance(by: .seconds(5))
        await earlier.value
        #expect(ended.values.withLock { $0 } == [5])
        clock.advance(by: .seconds(5))
        await first.value
        #expect(ended.values.withLock { $0 } == [5, 10])
        try await until { clock.sleepers >= 1 }
        clock.advance(by: .seconds(10))
        await later[0].value
        try await until { clock.sleepers >= 1 }
        clock.advance(by: .seconds(20))
        for task in later { await task.value }
        #expect(ended.values.withLock { $0 }.sorted() == [5, 10, 20, 30, 40])
    }

    @Test func aCancelledWaitReturnsAtOnce() async throws {
        let signal = CommitSignal()
        let clock = ManualClock()
        let seen = signal.generation
        let waiting = Task { await signal.wait(after: seen, timeout: .seconds(3600), clock: clock) }
        try await until { clock.sleepers == 1 }
        waiting.cancel()
        #expect(await waiting.value == seen)
    }
}
