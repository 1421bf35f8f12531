public import BillingRPC
internal import NIOCore
internal import Synchronization

/// Which connections a server keeps, so that no one client, and nobody
/// without a certificate, can take the room that others need.
///
/// - Before its TLS handshake completes a connection is *unauthenticated*.
///   At most `maxUnauthenticatedConnections` wait at once; a new one past
///   that closes the oldest waiting one (a handshake takes milliseconds, so
///   only connections that never handshake are the ones closed), and none
///   waits longer than the handshake timeout. A flood of raw TCP connections
///   therefore never touches the room of authenticated ones.
/// - After the handshake, the peer is admitted by the server's `classify`:
///   at most `maxConnectionsPerPeer` connections per certificate identity;
///   `maxConnections` in all, of which the last `reservedPrivilegedConnections`
///   only for `.privileged` peers (billingd: internal services and
///   operators), so account-scoped clients, however many, cannot lock them
///   out. A connection refused here is closed at once.
///
/// Thread-safe: one mutex; called from any event loop.
public final class ConnectionAdmission: Sendable {
    /// What the server says of a verified peer.
    public enum PeerClass: Sendable, Hashable {
        /// May use the reserved room.
        case privileged
        case ordinary
    }

    public typealias Classify = @Sendable (PeerIdentity) -> PeerClass

    private struct Pending {
        let channel: any Channel
        let order: UInt64
    }

    private struct State {
        var pending: [ObjectIdentifier: Pending] = [:]
        var nextOrder: UInt64 = 0
        var admitted: [ObjectIdentifier: (peer: String, privileged: Bool)] = [:]
        var perPeer: [String: Int] = [:]
        var privileged = 0
        var acceptedTotal = 0
        var refusedTotal = 0
    }

    private let limits: ServerLimits
    private let classify: Classify
    private let state = Mutex(State())

    init(limits: ServerLimits, classify: @escaping Classify) {
        self.limits = limits
        self.classify = classify
    }

    /// A new TCP connection. Returns a waiting connection to close to make
    /// room, if the waiting room is full.
    func accepted(_ channel: any Channel) -> (any Channel)? {
        state.withLock { state in
            var evicted: (any Channel)?
            if state.pending.count >= limits.maxUnauthenticatedConnections,
                let oldest = state.pending.min(by: { $0.value.order < $1.value.order })
            {
                state.pending.removeValue(forKey: oldest.key)
                evicted = oldest.value.channel
            }
            state.nextOrder += 1
            state.acceptedTotal += 1
            if evicted != nil { state.refusedTotal += 1 }
            state.pending[ObjectIdentifier(channel)] = Pending(channel: channel, order: state.nextOrder)
            return evicted
        }
    }

    /// The handshake completed: may this peer stay? On false the caller closes.
    func admit(_ channel: any Channel, peer: PeerIdentity) -> Bool {
        let key = ObjectIdentifier(channel)
        let peerClass = classify(peer)
        let identity = peer.uris.joined(separator: "\u{0}") + "\u{1}" + peer.commonName
        return state.withLock { state in
            guard state.pending.removeValue(forKey: key) != nil else { return false }  // evicted meanwhile
            let total = state.admitted.count
            // The reserve never takes the last connection from ordinary peers.
            let ordinaryRoom = max(1, limits.maxConnections - limits.reservedPrivilegedConnections)
            guard total < limits.maxConnections,
                peerClass == .privileged || total - state.privileged < ordinaryRoom,
                state.perPeer[identity, default: 0] < limits.maxConnectionsPerPeer
            else {
                state.refusedTotal += 1
                return false
            }
            state.admitted[key] = (identity, peerClass == .privileged)
            state.perPeer[identity, default: 0] += 1
            if peerClass == .privileged { state.privileged += 1 }
            return true
        }
    }

    /// The connection closed, in whatever state it was.
    func closed(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLock { state in
            state.pending.removeValue(forKey: key)
            guard let admitted = state.admitted.removeValue(forKey: key) else { return }
            state.perPeer[admitted.peer, default: 1] -= 1
            if state.perPeer[admitted.peer] == 0 { state.perPeer[admitted.peer] = nil }
            if admitted.privileged { state.privileged -= 1 }
        }
    }

    /// Connections waiting for their handshake and admitted ones now (of
    /// them, privileged ones); since start, connections accepted and refused
    /// (evicted or not admitted).
    public var counts: (unauthenticated: Int, admitted: Int, privileged: Int, acceptedTotal: Int, refusedTotal: Int) {
        state.withLock {
            ($0.pending.count, $0.admitted.count, $0.privileged, $0.acceptedTotal, $0.refusedTotal)
        }
    }
}
