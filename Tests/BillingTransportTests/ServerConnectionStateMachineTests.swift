import BillingRPC
import BillingTestSupport
import Testing

@testable import BillingTransport

/// The connection's rules without a channel: stream ids, the concurrency
/// limit, draining, idling, closing, deadlines.
@Suite struct ServerConnectionStateMachineTests {
    typealias Machine = ServerConnectionStateMachine<String>

    func opened(_ machine: inout Machine, _ id: UInt32) {
        #expect(machine.requestReceived(on: id) == .open)
        machine.streamStarted(id, "stream \(id)")
    }

    @Test func streamIDsAreOddAndOnlyGrowAndARefusedOneIsUsedUp() {
        var machine = Machine(maxConcurrentStreams: 8)
        #expect(
            machine.requestReceived(on: 2)
                == .refuse(RPCError(.invalidArgument, "stream id 2 is even; clients use odd ids"))
        )
        #expect(
            machine.requestReceived(on: 0)
                == .refuse(RPCError(.invalidArgument, "stream id 0 is even; clients use odd ids"))
        )
        opened(&machine, 5)
        #expect(
            machine.requestReceived(on: 5)
                == .refuse(RPCError(.invalidArgument, "stream id 5 is not above 5; ids cannot be reused"))
        )
        #expect(
            machine.requestReceived(on: 3)
                == .refuse(RPCError(.invalidArgument, "stream id 3 is not above 5; ids cannot be reused"))
        )
        // An id admitted but never started (its request did not decode) is used up too.
        #expect(machine.requestReceived(on: 7) == .open)
        #expect(
            machine.requestReceived(on: 7)
                == .refuse(RPCError(.invalidArgument, "stream id 7 is not above 7; ids cannot be reused"))
        )
        #expect(machine.lastStreamID == 7)
        #expect(machine.activeStreamCount == 1)
    }

    @Test func theConcurrencyLimitCountsRunningStreamsOnly() {
        var machine = Machine(maxConcurrentStreams: 2)
        opened(&machine, 1)
        opened(&machine, 3)
        #expect(
            machine.requestReceived(on: 5)
                == .refuse(RPCError(.resourceExhausted, "more than 2 concurrent streams on one connection"))
        )
        #expect(machine.streamEnded(1) == "stream 1")
        opened(&machine, 7)
        #expect(machine.activeStreamCount == 2)
    }

    @Test func aStreamEndsOnceWhateverEndsItFirst() {
        var machine = Machine(maxConcurrentStreams: 8)
        #expect(!machine.closesAfterFinalFrame, "an active connection stays open with nothing running")
        opened(&machine, 1)
        // The deadline, then the handler's result, then a Cancel: only the first acts.
        #expect(machine.streamEnded(1) == "stream 1")
        #expect(machine.streamEnded(1) == nil)
        #expect(machine.streamEnded(1) == nil)
        #expect(!machine.isRunning(1))
        // Never opened: nothing to end.
        #expect(machine.streamEnded(99) == nil)
    }

    @Test func anUnknownFrameIsAnsweredOnlyOnAnUnusedOddID() {
        var machine = Machine(maxConcurrentStreams: 8)
        opened(&machine, 5)
        #expect(!machine.answersUnknownFrame(on: 5), "a running stream is not disturbed")
        #expect(!machine.answersUnknownFrame(on: 3), "an id used up")
        #expect(!machine.answersUnknownFrame(on: 8), "an even id")
        #expect(machine.answersUnknownFrame(on: 9))
    }

    @Test func drainingRefusesNewStreamsAndClosesAfterTheLastRunningOneEnds() {
        var machine = Machine(maxConcurrentStreams: 8)
        opened(&machine, 1)
        opened(&machine, 3)
        #expect(machine.beginDraining() == .init(lastStreamID: 3, closeNow: false))
        #expect(machine.state == .draining)
        #expect(machine.beginDraining() == nil, "one GOAWAY")
        #expect(
            machine.requestReceived(on: 5)
                == .refuse(RPCError(.unavailable, "server is shutting down; retry on a new connection"))
        )
        #expect(machine.lastStreamID == 5, "the refused id is used up")
        #expect(machine.streamEnded(1) != nil)
        #expect(!machine.closesAfterFinalFrame)
        #expect(machine.streamEnded(3) != nil)
        #expect(machine.closesAfterFinalFrame)
    }

    @Test func drainingAnIdleConnectionClosesItAtOnce() {
        var machine = Machine(maxConcurrentStreams: 8)
        #expect(machine.beginDraining() == .init(lastStreamID: 0, closeNow: true))
    }

    @Test func theIdleTimerDrainsOnlyAConnectionWithNothingRunning() {
        var machine = Machine(maxConcurrentStreams: 8)
        opened(&machine, 1)
        #expect(machine.idleTimeoutFired() == nil)
        #expect(machine.state == .active)
        _ = machine.streamEnded(1)
        #expect(machine.idleTimeoutFired() == .init(lastStreamID: 1, closeNow: true))
        #expect(machine.idleTimeoutFired() == nil, "already draining")
    }

    @Test func closingHandsBackEveryRunningStreamOnceAndRefusesAfter() {
        var machine = Machine(maxConcurrentStreams: 8)
        opened(&machine, 3)
        opened(&machine, 1 + 4)
        opened(&machine, 9)
        #expect(machine.close().map(\.id) == [3, 5, 9])
        #expect(machine.close().isEmpty)
        #expect(machine.state == .closed)
        #expect(machine.beginDraining() == nil)
        #expect(
            machine.requestReceived(on: 11)
                == .refuse(RPCError(.unavailable, "server is shutting down; retry on a new connection"))
        )
        #expect(machine.streamEnded(3) == nil, "a handler finishing after the close writes nothing")
    }

    @Test func aCallsDeadlineIsItsOwnTheUnaryDefaultOrNone() throws {
        let unaryDefault = Duration.seconds(30)
        #expect(
            try Machine.timeout(requestTimeoutNano: 2_000_000, isUnary: true, defaultUnary: unaryDefault).get()
                == .milliseconds(2)
        )
        #expect(
            try Machine.timeout(requestTimeoutNano: 2_000_000, isUnary: false, defaultUnary: unaryDefault).get()
                == .milliseconds(2)
        )
        #expect(
            try Machine.timeout(requestTimeoutNano: 0, isUnary: true, defaultUnary: unaryDefault).get() == unaryDefault
        )
        #expect(try Machine.timeout(requestTimeoutNano: 0, isUnary: false, defaultUnary: unaryDefault).get() == nil)
        #expect(try Machine.timeout(requestTimeoutNano: 0, isUnary: true, defaultUnary: nil).get() == nil)
        guard
            case .failure(let error) = Machine.timeout(
                requestTimeoutNano: -1,
                isUnary: true,
                defaultUnary: unaryDefault
            )
        else {
            Issue.record("a negative timeout was taken")
            return
        }
        #expect(error == RPCError(.invalidArgument, "timeout_nano is negative"))
    }

    @Test func seededSequencesKeepTheTableConsistent() {
        // Random opens, ends, idle timers, drains and closes: a request opens a
        // stream exactly when the connection is active and under its limit;
        // the running set is what was started and not yet ended; the
        // connection closes after a final frame exactly when it drains and
        // nothing runs.
        var generator = SplitMix64(seed: 17)
        var opens = 0
        var drainsWithStreams = 0
        for _ in 0..<200 {
            var machine = Machine(maxConcurrentStreams: 4)
            var running: Set<UInt32> = []
            var nextID: UInt32 = 1
            for _ in 0..<100 {
                switch generator.next() % 10 {
                case 0, 1, 2, 3:
                    let expected = machine.state == .active && running.count < 4
                    let admission = machine.requestReceived(on: nextID)
                    #expect(
                        (admission == .open) == expected,
                        "\(admission) in \(machine.state) with \(running.count) running"
                    )
                    if admission == .open {
                        machine.streamStarted(nextID, "s")
                        running.insert(nextID)
                        opens += 1
                    }
                    nextID += 2
                case 4, 5, 6:
                    let id = UInt32(generator.next() % UInt64(nextID + 1))
                    #expect((machine.streamEnded(id) != nil) == running.contains(id))
                    running.remove(id)
                case 7:
                    if generator.next() % 4 == 0 {
                        let wasActive = machine.state == .active
                        let goAway = machine.idleTimeoutFired()
                        #expect((goAway != nil) == (wasActive && running.isEmpty))
                    }
                case 8:
                    if generator.next() % 4 == 0 {
                        let wasActive = machine.state == .active
                        if wasActive && !running.isEmpty { drainsWithStreams += 1 }
                        let goAway = machine.beginDraining()
                        #expect((goAway != nil) == wasActive)
                        #expect(
                            goAway.map { $0.closeNow == running.isEmpty && $0.lastStreamID == machine.lastStreamID }
                                ?? true
                        )
                    }
                default:
                    if generator.next() % 8 == 0 {
                        #expect(Set(machine.close().map(\.id)) == running)
                        running = []
                    }
                }
                #expect(
                    Set(running) == Set(running.filter { machine.isRunning($0) })
                        && machine.activeStreamCount == running.count
                )
                #expect(machine.activeStreamCount <= 4)
                #expect(machine.closesAfterFinalFrame == (machine.state == .draining && running.isEmpty))
            }
        }
        // The sequences reach what they are meant to test.
        #expect(opens > 500 && drainsWithStreams > 50, "opens \(opens), drains with streams \(drainsWithStreams)")
    }
}
