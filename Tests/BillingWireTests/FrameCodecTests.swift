import BillingTestSupport
import BillingWire
import NIOCore
import NIOEmbedded
import Testing

@Suite struct FrameCodecTests {
    func encode(_ frames: [Frame], limits: WireLimits = WireLimits()) throws -> ByteBuffer {
        var out = ByteBuffer()
        for frame in frames { try FrameEncoder(limits: limits).encode(data: frame, out: &out) }
        return out
    }

    func sampleFrames(count: Int, seed: UInt64) -> [Frame] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { index in
            let length = [0, 1, 9, 10, 11, 1000, 70_000][Int(generator.next() % 7)]
            let payload = ByteBuffer(bytes: (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            return Frame(
                streamID: UInt32(index * 2 + 1),
                type: [.request, .response, .data][Int(generator.next() % 3)],
                flags: FrameFlags(rawValue: UInt8(generator.next() % 4)),
                payload: payload
            )
        }
    }

    @Test func headerIsTenBytesBigEndian() throws {
        let bytes = try encode([
            Frame(streamID: 0x0102_0304, type: .data, flags: .remoteClosed, payload: ByteBuffer(bytes: [0xAA, 0xBB]))
        ])
        #expect(Array(bytes.readableBytesView) == [0, 0, 0, 2, 1, 2, 3, 4, 3, 1, 0xAA, 0xBB])
    }

    @Test(arguments: 0..<5)
    func decoderFedWholeOrByteByByteGivesTheSameFrames(seed: UInt64) throws {
        let frames = sampleFrames(count: 20, seed: seed)
        let wire = try encode(frames)

        var decoder = FrameDecoder(limits: WireLimits())
        var whole = wire
        var decodedWhole: [InboundFrame] = []
        while let frame = try decoder.decodeOne(&whole) { decodedWhole.append(frame) }
        #expect(decodedWhole == frames.map { .frame($0) }, "seed \(seed)")

        var byteDecoder = FrameDecoder(limits: WireLimits())
        var accumulated = ByteBuffer()
        var decodedBytes: [InboundFrame] = []
        for byte in wire.readableBytesView {
            accumulated.writeInteger(byte)
            while let frame = try byteDecoder.decodeOne(&accumulated) { decodedBytes.append(frame) }
            accumulated.discardReadBytes()
        }
        #expect(decodedBytes == frames.map { .frame($0) }, "seed \(seed)")
    }

    @Test func lengthAboveTheLimitIsReportedFromTheHeaderAndSkipped() throws {
        let limits = WireLimits(maxFrameBytes: 16)
        var decoder = FrameDecoder(limits: limits)
        var wire = ByteBuffer()
        wire.writeFrameHeader(FrameHeader(length: 17, streamID: 5, type: .request, flags: []))
        wire.writeBytes([UInt8](repeating: 7, count: 17))
        var next = try encode([Frame(streamID: 7, type: .request, payload: ByteBuffer(string: "ok"))])
        wire.writeBuffer(&next)
        // Only the header is needed to refuse it.
        var headerOnly = wire.getSlice(at: 0, length: 10)!
        var probe = FrameDecoder(limits: limits)
        #expect(
            try probe.decodeOne(&headerOnly)
                == .oversized(FrameHeader(length: 17, streamID: 5, type: .request, flags: []), limit: 16)
        )
        // The whole stream: the oversized frame is skipped, the next one arrives intact.
        #expect(
            try decoder.decodeOne(&wire)
                == .oversized(FrameHeader(length: 17, streamID: 5, type: .request, flags: []), limit: 16)
        )
        #expect(
            try decoder.decodeOne(&wire)
                == .frame(Frame(streamID: 7, type: .request, payload: ByteBuffer(string: "ok")))
        )
    }

    @Test func fourGibibyteLengthBuffersNothing() throws {
        var decoder = FrameDecoder(limits: WireLimits())
        var wire = ByteBuffer()
        wire.writeFrameHeader(FrameHeader(length: UInt32.max, streamID: 1, type: .request, flags: []))
        wire.writeBytes([UInt8](repeating: 0, count: 1000))
        guard case .oversized(let header, _)? = try decoder.decodeOne(&wire) else {
            Issue.record("expected oversized")
            return
        }
        #expect(header.length == UInt32.max)
        #expect(wire.readableBytes == 0, "the payload seen so far is discarded, not held")
        #expect(try decoder.decodeOne(&wire) == nil)
    }

    @Test func frameCutOffMidHeaderOrMidBodyWaits() throws {
        let wire = try encode([Frame(streamID: 1, type: .request, payload: ByteBuffer(string: "abcdef"))])
        for cut in [0, 5, 9, 10, 13] {
            var partial = wire.getSlice(at: 0, length: cut)!
            var decoder = FrameDecoder(limits: WireLimits())
            #expect(try decoder.decodeOne(&partial) == nil, "cut at \(cut)")
        }
    }

    @Test func connectionClosedInsideAFrameIsAnError() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(limits: WireLimits())))
        let wire = try encode([Frame(streamID: 1, type: .request, payload: ByteBuffer(string: "abcdef"))])
        try channel.writeInbound(wire.getSlice(at: 0, length: 12)!)
        #expect(throws: WireError.truncatedFrame(bufferedBytes: 12)) { try channel.finish() }
    }

    @Test func encoderRefusesAPayloadOverTheLimit() {
        let frame = Frame(streamID: 1, type: .response, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: 17)))
        #expect(throws: WireError.frameTooLarge(length: 17, limit: 16, streamID: 1)) {
            try encode([frame], limits: WireLimits(maxFrameBytes: 16))
        }
    }

    @Test func unknownTypesAndFlagsSurviveDecoding() throws {
        var wire = ByteBuffer()
        wire.writeFrameHeader(
            FrameHeader(length: 0, streamID: 3, type: FrameType(rawValue: 0x7F), flags: FrameFlags(rawValue: 0xF0))
        )
        var decoder = FrameDecoder(limits: WireLimits())
        #expect(
            try decoder.decodeOne(&wire)
                == .frame(
                    Frame(
                        streamID: 3,
                        type: FrameType(rawValue: 0x7F),
                        flags: FrameFlags(rawValue: 0xF0),
                        payload: ByteBuffer()
                    )
                )
        )
    }
}
