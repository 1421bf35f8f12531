public import BillingWire

/// Frame types beyond ttrpc 1.2 (docs/PROTOCOL.md, "Extensions"). A stock
/// ttrpc peer ignores unknown types, so sending them needs no negotiation:
/// a peer that does not know one simply does not act on it.
extension FrameType {
    /// Client → server: stop the call on this stream; no response follows.
    public static let cancel = FrameType(rawValue: 0x10)
    /// Server → client: the server is shutting down; payload is the 4-byte
    /// big-endian last stream id it will still answer. Open no new streams here.
    public static let goAway = FrameType(rawValue: 0x11)
}
