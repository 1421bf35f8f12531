internal import NIOCore

/// Runs a task's jobs on a NIO event loop.
///
/// Why: a handler task that prefers its connection's event loop starts and
/// resumes on the thread that already holds the connection, so a call costs
/// no thread hand-offs (the largest cost in a profile of the unary path).
/// Work that suspends (storage, providers) still runs elsewhere and comes
/// back here; handlers must not block, as on any event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
