import BillingStorage
import BillingTestSupport
import Foundation
import Testing

/// A real child process writing transitions, killed with SIGKILL at random
/// moments, many times over the same file: each time the file opens, passes
/// `PRAGMA integrity_check`, and every transition is there whole or not at all
/// (a Paid payment has its one credit and its events; a New one has neither).
@Suite struct DurabilityTests {
    static var writer: URL? {
        // billing-bench is built beside the test bundle.
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("billing-bench")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    @Test func killedMidTransitionLeavesWholeTransitionsOnly() async throws {
        let writer = try #require(Self.writer, "billing-bench must be built (swift build) before the tests")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-kill-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("billing.sqlite")
        var generator = SystemRandomNumberGenerator()
        for round in 0..<15 {
            let output = try DescriptorPipe()
            let child = try await ChildProcess(
                writer.path,
                ["crash-writer", file.path],
                standardOutput: output.writing.fileDescriptor
            )
            try output.writing.close()
            // Wait until it has opened the file, then let it write a while.
            // Blocking waits run on a Dispatch thread, not a Swift concurrency one.
            await onDispatch { _ = output.reading.availableData }
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...200, using: &generator)))
            child.send(SIGKILL)
            #expect(await child.wait() == .signalled(SIGKILL), "round \(round): the writer stopped by itself")

            let reopened = try await StoreFixture(reopening: file)
            let problems = try await reopened.checkInvariants()
            #expect(problems == [], "round \(round): \(problems.prefix(5))")
        }
        let final = try await StoreFixture(reopening: file)
        let events = try await final.store.events(after: 0, accountID: nil, limit: 10_000)
        #expect(events.count > 50, "the writer should have committed work between kills")
    }
}

/// Runs a blocking call on a thread of its own and waits for it without
/// holding one of Swift concurrency's few threads.
func onDispatch(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        onOwnThread {
            body()
            continuation.resume()
        }
    }
}
