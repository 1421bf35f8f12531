import Foundation

// Fuzz targets for everything billingd reads from outside, for libFuzzer.
//
//   deploy/fuzz TARGET [SECONDS]      builds with -sanitize=fuzzer,address and runs one target
//   billing-fuzz TARGET FILE...       (a normal build) runs the inputs once: replay a crash
//
// Targets (docs/RELIABILITY.md has the figures of the last long run):
//   frame      the ttrpc frame decoder, fed the input as one stream
//   envelope   the ttrpc Request envelope (WireValidator + protobuf-c)
//   requests   every request message of every service: the first byte picks it
//   money      amounts as people type them, in each known currency
//   principal  certificate URI names → the caller's role
//   config     billingd's configuration file and environment
//   webhook    a Stripe delivery: its signature header and body, at any clock
//   panel      every form and query billing-panel decodes, and its escaping
//   invoice    an invoice's text from outside, as the printable page (no markup
//              of it) and as the PDF (always renders)
//
// Each target also checks a property that must hold for every input, so a
// wrong answer is a finding, not only a crash.
//
// Built with -DFUZZING (deploy/fuzz), this hands the command line to
// libFuzzer's driver, and $BILLING_FUZZ_TARGET picks the target
// (FuzzTargets.swift).

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(runDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
#else
let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let target = targets[name] else {
    FileHandle.standardError.write(
        Data("usage: billing-fuzz TARGET FILE...; targets: \(targets.keys.sorted().joined(separator: ", "))\n".utf8)
    )
    exit(2)
}
for file in arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: file) else {
        FileHandle.standardError.write(Data("billing-fuzz: cannot read \(file)\n".utf8))
        exit(1)
    }
    target(Array(data))
    print("\(file): ok")
}
#endif
