internal import Foundation
public import Logging
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// One JSON object per line on standard error, for log shippers
/// (`logging.format = "json"`): `timestamp` (UTC, milliseconds, RFC 3339),
/// `level`, `label`, `message`, `source` and `metadata` (strings, lists and
/// objects as given). Each line is one `write`, so lines from different
/// threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable ([UInt8]) -> Void

    /// - Parameter write: where a line goes (standard error unless a test says otherwise).
    public init(label: String, write: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var metadata = event.metadata ?? [:]
        if let error = event.error { metadata["error"] = .string("\(error)") }
        write(level: event.level, message: event.message, metadata: metadata, source: event.source)
    }

    public func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata explicit: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {
        write(level: level, message: message, metadata: explicit, source: source)
    }

    private func write(
        level: Logger.Level,
        message: Logger.Message,
        metadata explicit: Logger.Metadata?,
        source: String
    ) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        var out = "{\"timestamp\":\"\(Self.timestamp())\",\"level\":\"\(level.rawValue)\",\"label\":"
        Self.append(string: label, to: &out)
        out += ",\"message\":"
        Self.append(string: message.description, to: &out)
        out += ",\"source\":"
        Self.append(string: source, to: &out)
        out += ",\"metadata\":"
        Self.append(.dictionary(merged), to: &out)
        out += "}\n"
        write(Array(out.utf8))
    }

    public static let standardError: @Sendable ([UInt8]) -> Void = { bytes in
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    private static func append(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let string):
            append(string: string, to: &out)
        case .stringConvertible(let convertible):
            append(string: convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                append(element, to: &out)
            }
            out += "]"
        case .dictionary(let entries):
            out += "{"
            for (index, key) in entries.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                append(string: key, to: &out)
                out += ":"
                append(entries[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string: quotes, backslashes and every control character escaped.
    static func append(string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                out += String(format: "\\u%04x", scalar.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Now in UTC, e.g. 2026-11-27T21:03:04.123Z.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900,
            Int(parts.tm_mon) + 1,
            Int(parts.tm_mday),
            Int(parts.tm_hour),
            Int(parts.tm_min),
            Int(parts.tm_sec),
            Int(now.tv_nsec / 1_000_000)
        )
    }
}
