internal import Foundation
internal import Synchronization

/// A throw-away PostgreSQL 15 server for tests and benchmarks: `initdb` into
/// a temporary folder, `pg_ctl start` listening on a Unix socket in that
/// folder only (no TCP port, so no port can be taken), trust login for the
/// user `billing`. Stopped and removed by `stop()`, and by a watchdog when
/// the process that started it ends without stopping it.
///
/// PostgreSQL refuses to run as root: as root, the server runs as the
/// `postgres` user (made by Debian's package), which owns the folder.
public final class PostgresServer: Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    public let directory: String
    /// The folder of the server's socket (`host` in a configuration).
    public var socketDirectory: String { directory + "/socket" }
    public let user = "billing"
    public let port = 5432
    private let runAs: String?
    private let stopped = Mutex(false)
    private let watchdog = Mutex<ChildProcess?>(nil)

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Whether this machine has PostgreSQL 15 (`deploy/setup` installs it).
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: binaries + "/initdb")
    }

    /// One server for the whole test process, started on first use; each
    /// test makes its own database in it (`createDatabase`).
    public static func shared() async throws -> PostgresServer {
        try await sharedServer.value()
    }

    private static let sharedServer = Lazily { try await PostgresServer.start() }

    /// Starts a new server. `settings` are `-c name=value` pairs for it
    /// (tests pass `fsync=off`; the benchmark keeps the durable defaults).
    public static func start(
        settings: [String: String] = ["fsync": "off", "max_connections": "1000"]
    ) async throws -> PostgresServer {
        guard isInstalled else {
            throw Failure(description: "PostgreSQL 15 is not installed (\(binaries)); run deploy/setup")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "billing-pg-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: directory + "/socket", withIntermediateDirectories: true)
        let runAs = geteuid() == 0 ? "postgres" : nil
        let server = PostgresServer(directory: directory, runAs: runAs)
        if let runAs {
            let owned = await ChildProcess.run("/bin/chown", ["-R", runAs, directory])
            guard owned.status == 0 else { throw Failure(description: "chown: \(owned.errorText)") }
        }
        try await server.command(
            "initdb",
            ["-D", directory + "/data", "-U", "billing", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        )
        var options = "-k \(directory)/socket -c listen_addresses='' -p \(server.port)"
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) { options += " -c \(name)=\(value)" }
        try await server.command(
            "pg_ctl",
            ["-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "120", "-o", options, "start"]
        )
        await server.watch()
        return server
    }

    private init(directory: String, runAs: String?) {
        self.directory = directory
        self.runAs = runAs
    }

    /// A new, empty database; its name.
    public func createDatabase() async throws -> String {
        let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try await sql("CREATE DATABASE \(name)", database: "postgres")
        return name
    }

    /// Runs SQL with psql as the superuser (fixtures only).
    @discardableResult
    public func sql(_ statement: String, database: String) async throws -> String {
        let result = await ChildProcess.run(
            "/usr/bin/psql",
            [
                "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", "\(port)", "-U", user,
                "-d", database, "-c", statement,
            ]
        )
        guard result.status == 0 else { throw Failure(description: "psql: \(result.errorText)") }
        return result.outputText
    }

    /// `postgres://billing@/<database>?host=<socket folder>`.
    public func url(database: String) -> String {
        "postgres://\(user)@/\(database)?host=\(socketDirectory)"
    }

    /// Stops the server at once and removes its folder.
    public func stop() async {
        guard
            stopped.withLock({ was in
                defer { was = true }
                return !was
            })
        else { return }
        _ = try? await command("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
        watchdog.withLock { $0?.terminate() }
    }

    /// The server's log (for a failing test's message).
    public var log: String {
        (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
    }

    private func command(_ name: String, _ arguments: [String]) async throws {
        let path = Self.binaries + "/" + name
        let result =
            if let runAs {
                await ChildProcess.run("/usr/sbin/runuser", ["-u", runAs, "--", path] + arguments, mergingErrors: true)
            } else {
                await ChildProcess.run(path, arguments, mergingErrors: true)
            }
        guard result.status == 0 else {
            throw Failure(description: "\(name) failed (\(result.status)): \(result.outputText.suffix(2000))")
        }
    }

    /// A shell that outlives nothing: once this process is gone (ended or
    /// killed), it stops the server and removes its folder.
    private func watch() async {
        let stop =
            (runAs.map { "/usr/sbin/runuser -u \($0) -- " } ?? "")
            + "\(Self.binaries)/pg_ctl -D '\(directory)/data' -m immediate -w stop"
        let script =
            "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf '\(directory)'"
        let child = try? await ChildProcess("/bin/sh", ["-c", script])
        watchdog.withLock { $0 = child }
    }
}

/// A value made once, by the first caller; the others wait for it.
final class Lazily<Value: Sendable>: Sendable {
    private let make: @Sendable () async throws -> Value
    private let task = Mutex<Task<Value, any Error>?>(nil)

    init(_ make: @escaping @Sendable () async throws -> Value) {
        self.make = make
    }

    func value() async throws -> Value {
        let task = task.withLock { current in
            if let current { return current }
            let made = Task { try await make() }
            current = made
            return made
        }
        return try await task.value
    }
}
