import BillingServer
import Foundation
import Logging
import Synchronization
import Testing

/// `logging.format = "json"`: every line one JSON object that says exactly
/// what was logged, whatever the text holds.
@Suite struct LoggingTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
    }

    @Test func everyTextAndMetadataShapeComesBackAsLogged() throws {
        let captured = Lines()
        var handler = JSONLogHandler(label: "billingd") { bytes in
            captured.lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
        }
        handler.metadata = ["owner": "poller-1"]
        let logger = Logger(label: "billingd") { _ in handler }
        let hostile = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{07} del \u{7F} ls \u{2028} emoji 💳"
        logger.warning(
            "\(hostile)",
            metadata: [
                "payment": "pay_1",
                "count": .stringConvertible(3),
                "list": ["a", "b\n"],
                "nested": ["k": ["v"]],
            ]
        )
        let lines = captured.lines.withLock { $0 }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.hasSuffix("}\n") && line.dropLast().allSatisfy { $0 != "\n" }, "one line: \(line)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == hostile)
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "billingd")
        let timestamp = try #require(object["timestamp"] as? String)
        #expect(timestamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(timestamp)")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["owner"] as? String == "poller-1")
        #expect(metadata["payment"] as? String == "pay_1")
        #expect(metadata["count"] as? String == "3")
        #expect(metadata["list"] as? [String] == ["a", "b\n"])
        #expect((metadata["nested"] as? [String: [String]])?["k"] == ["v"])
    }

    @Test func theFormatIsTextOrJSON() throws {
        var configuration = BillingConfiguration()
        #expect(configuration.logging.format == "text")
        configuration.logging.format = "xml"
        #expect(configuration.validate().contains("logging.format \"xml\" is not text or json"))
        let fromEnvironment = try BillingConfiguration.load(path: nil, environment: ["BILLINGD_LOG_FORMAT": "json"])
        #expect(fromEnvironment.logging.format == "json" && fromEnvironment.validate().isEmpty)
        let fromFile = try BillingConfiguration.load(
            data: Data(#"{"logging": {"format": "json"}}"#.utf8),
            source: "t.json",
            environment: [:]
        )
        #expect(fromFile.logging.format == "json")
    }
}
