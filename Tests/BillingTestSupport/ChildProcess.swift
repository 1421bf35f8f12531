public import Foundation
import Subprocess
import Synchronization

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// A child process started through swift-subprocess, with the surface the
/// tests and tools need: its pid, signals, whether it still runs, and how it
/// ended.
///
/// Not Foundation's `Process`: its `run()` on Linux reads past a buffer while
/// listing `/proc/self/fd` and crashes now and then in a process with many
/// descriptors open, as a test process is (swift-corelibs-foundation#5472).
///
/// The child's standard streams are descriptors the caller owns (the write
/// end of a pipe, say), or `/dev/null` when not given; the caller closes its
/// own copy after `init` returns so that a reader sees end of file.
public final class ChildProcess: Sendable {
    /// How a child ended: an exit code, or the signal that stopped it.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// It could not be started or waited for.
        case failed(String)

        public var status: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): 128 + signal
            case .failed: -1
            }
        }
    }

    public struct LaunchFailure: Error, CustomStringConvertible {
        public let description: String
    }

    public let processIdentifier: Int32
    private let ended: Task<Termination, Never>
    private let termination: Ended

    private final class Ended: Sendable {
        let value = Mutex<Termination?>(nil)
    }

    /// Starts `executable` (a path) with `arguments`; `environment` nil
    /// inherits this process's.
    public init(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        directory: String? = nil,
        standardInput: Int32? = nil,
        standardOutput: Int32? = nil,
        standardError: Int32? = nil
    ) async throws {
        func stream(_ given: Int32?, _ flags: Int32) throws -> (FileDescriptor, close: Bool) {
            if let given { return (FileDescriptor(rawValue: given), false) }
            let null = open("/dev/null", flags | O_CLOEXEC)
            guard null >= 0 else { throw LaunchFailure(description: "cannot open /dev/null: errno \(errno)") }
            return (FileDescriptor(rawValue: null), true)
        }
        let input = try stream(standardInput, O_RDONLY)
        let output = try stream(standardOutput, O_WRONLY)
        let error = try stream(standardError, O_WRONLY)
        var variables: [Environment.Key: String] = [:]
        for (key, value) in environment ?? [:] { variables[Environment.Key(stringLiteral: key)] = value }
        let configuredEnvironment: Environment = environment == nil ? .inherit : .custom(variables)

        let (started, starting) = AsyncStream<Result<Int32, LaunchFailure>>.makeStream()
        let termination = Ended()
        self.termination = termination
        self.ended = Task {
            let result: Termination
            do {
                let execution = try await Subprocess.run(
                    .path(FilePath(executable)),
                    arguments: Arguments(arguments),
                    environment: configuredEnvironment,
                    workingDirectory: directory.map { FilePath($0) },
                    input: .fileDescriptor(input.0, closeAfterSpawningProcess: input.close),
                    output: .fileDescriptor(output.0, closeAfterSpawningProcess: output.close),
                    error: .fileDescriptor(error.0, closeAfterSpawningProcess: error.close)
                ) { execution in
                    starting.yield(.success(execution.processIdentifier.value))
                }
                result = Termination(execution.terminationStatus)
            } catch {
                starting.yield(.failure(LaunchFailure(description: "\(executable): \(error)")))
                result = .failed("\(error)")
            }
            starting.finish()
            termination.value.withLock { $0 = result }
            return result
        }
        var iterator = started.makeAsyncIterator()
        switch await iterator.next() {
        case .success(let pid)?: self.processIdentifier = pid
        case .failure(let failure)?: throw failure
        case nil: throw LaunchFailure(description: "\(executable): did not start")
        }
    }

    /// True until the child has ended and been reaped.
    public var isRunning: Bool { termination.value.withLock { $0 == nil } }

    /// Sends `signal` while the child has not been reaped (its pid cannot
    /// have been reused yet).
    public func send(_ signal: Int32) {
        termination.value.withLock { ended in
            if ended == nil { _ = kill(processIdentifier, signal) }
        }
    }

    public func terminate() { send(SIGTERM) }

    /// Waits for the child to end.
    public func wait() async -> Termination { await ended.value }
}

extension ChildProcess {
    /// What a child that ran to its end wrote.
    public struct Outcome: Sendable {
        public let termination: Termination
        public let output: [UInt8]
        public let error: [UInt8]
        public var status: Int32 { termination.status }
        public var outputText: String { String(decoding: output, as: UTF8.self) }
        public var errorText: String { String(decoding: error, as: UTF8.self) }
    }

    /// Runs `executable` to its end, feeding it `input` and collecting both
    /// outputs (`mergingErrors`: standard error into standard output). Waits
    /// without holding a Swift concurrency thread; never throws: a child that
    /// cannot start ends `.failed`.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        adding extra: [String: String] = [:],
        directory: String? = nil,
        input: [UInt8] = [],
        mergingErrors: Bool = false
    ) async -> Outcome {
        var variables: [Environment.Key: String] = [:]
        for (key, value) in environment ?? [:] { variables[Environment.Key(stringLiteral: key)] = value }
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in extra { updates[Environment.Key(stringLiteral: key)] = value }
        let configured = (environment == nil ? Environment.inherit : Environment.custom(variables)).updating(updates)
        let limit = 64 << 20
        do {
            if mergingErrors {
                let result = try await Subprocess.run(
                    .path(FilePath(executable)),
                    arguments: Arguments(arguments),
                    environment: configured,
                    workingDirectory: directory.map { FilePath($0) },
                    input: .array(input),
                    output: .bytes(limit: limit),
                    error: .combinedWithOutput
                )
                return Outcome(
                    termination: Termination(result.terminationStatus),
                    output: result.standardOutput,
                    error: []
                )
            }
            let result = try await Subprocess.run(
                .path(FilePath(executable)),
                arguments: Arguments(arguments),
                environment: configured,
                workingDirectory: directory.map { FilePath($0) },
                input: .array(input),
                output: .bytes(limit: limit),
                error: .bytes(limit: limit)
            )
            return Outcome(
                termination: Termination(result.terminationStatus),
                output: result.standardOutput,
                error: result.standardError
            )
        } catch {
            return Outcome(termination: .failed("\(executable): \(error)"), output: [], error: Array("\(error)".utf8))
        }
    }
}

extension ChildProcess.Termination {
    init(_ status: TerminationStatus) {
        switch status {
        case .exited(let code): self = .exited(code)
        case .signaled(let signal): self = .signalled(signal)
        }
    }
}

/// A pipe whose ends are plain descriptors, each closed at most once (a
/// child started by `ChildProcess` inherits only the ends given to it).
public final class DescriptorPipe: Sendable {
    public let reading: FileHandle
    public let writing: FileHandle

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ChildProcess.LaunchFailure(description: "pipe: errno \(errno)") }
        reading = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        writing = FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
    }

    /// Reads the pipe on a Dispatch thread as bytes arrive, handing each
    /// chunk to `received`, until end of file (reads a signal interrupted are
    /// retried); then signals `done`.
    public func drain(_ received: @escaping @Sendable ([UInt8]) -> Void, done: DispatchSemaphore) {
        let reader = reading
        onOwnThread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reader.fileDescriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    received(Array(buffer[0..<count]))
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            done.signal()
        }
    }
}

/// Runs `body`, which blocks (a read of a child's pipe, a semaphore), on a
/// thread of its own: never on one of Dispatch's global threads, which Swift
/// concurrency shares on Linux and which a few blocked readers at once (one
/// per running billingd in a parallel test run) would leave others waiting
/// for.
public func onOwnThread(_ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.start()
}
