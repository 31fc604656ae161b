/// An error reading or writing a safetensors file (or any file written through `AtomicFile`).
///
/// `message` names the offending tensor or header field, e.g.
/// `tensor 'fc.weight': data_offsets [0, 40] outside the data section of 16 bytes (file truncated?)`.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// The file that was being read or written.
    public let path: String
    /// What went wrong, naming the tensor or field concerned.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
