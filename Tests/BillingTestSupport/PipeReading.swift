public import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension FileHandle {
    /// Everything until end of file, retrying reads a signal interrupted.
    ///
    /// Foundation's `readDataToEndOfFile()` traps on EINTR (a `try!` inside
    /// it on Linux), which a test process receives now and then (a child
    /// exiting, the backtracer): a test helper reading a child's output must
    /// not crash the whole run for that.
    public func readAllRetryingInterrupts() -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else if count == 0 || errno != EINTR {
                return data
            }
        }
    }
}
