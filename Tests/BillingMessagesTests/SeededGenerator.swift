import BillingMessages
import BillingTestSupport

/// Random message values for the generated `+Random.swift` files, from the
/// shared SplitMix64, so a failing case is reproduced by the seed its test prints.
struct SeededGenerator: RandomNumberGenerator {
    private var core: SplitMix64

    init(seed: UInt64) {
        core = SplitMix64(seed: seed)
    }

    mutating func next() -> UInt64 {
        core.next()
    }

    mutating func below(_ bound: Int) -> Int {
        core.below(bound)
    }

    mutating func coin() -> Bool {
        next() & 1 == 0
    }

    /// Edge values half of the time: the limits are where codecs break.
    mutating func next<T: FixedWidthInteger>(_ type: T.Type) -> T {
        switch below(8) {
        case 0: return T.min
        case 1: return T.max
        case 2: return 0
        case 3: return T.isSigned ? T(truncatingIfNeeded: -1) : 1
        default: return T(truncatingIfNeeded: next())
        }
    }

    mutating func next(_ type: Bool.Type) -> Bool {
        coin()
    }

    mutating func next(_ type: Double.Type) -> Double {
        [0, -0.5, 1e300, -1e-300, Double(Int64(truncatingIfNeeded: next()))][below(5)]
    }

    mutating func next(_ type: Float.Type) -> Float {
        Float(next(Double.self))
    }

    /// ASCII, two-, three- and four-byte UTF-8, and the empty string.
    mutating func string() -> String {
        let pieces = ["a", "Z", "0", " ", "é", "ß", "₽", "€", "日本", "😀", "\u{10FFFF}", "-", "\t"]
        let count = below(4) == 0 ? 0 : below(12) + 1
        return (0..<count).map { _ in pieces[below(pieces.count)] }.joined()
    }

    mutating func bytes() -> [UInt8] {
        let count = below(3) == 0 ? 0 : below(40) + 1
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    mutating func enumValue<E: ProtoEnum>(_ type: E.Type) -> E {
        // Now and then a value this build does not know, which must survive.
        if below(6) == 0 {
            let raw = Int32(truncatingIfNeeded: next()) | 0x100
            return E(rawValue: raw)
        }
        return E.knownCases[below(E.knownCases.count)]
    }

    mutating func list<T>(depth: Int, _ make: (inout SeededGenerator) -> T) -> [T] {
        let count = depth > 3 ? 0 : below(4)
        return (0..<count).map { _ in make(&self) }
    }
}

/// Generated for every message in `Generated/*+Random.swift`.
protocol RandomMessage: ProtoMessage {
    static func random(using g: inout SeededGenerator, depth: Int) -> Self
}
