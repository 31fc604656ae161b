/// Errors of the data pipeline: a missing data file, a corrupt one, or an invalid request
/// (e.g. a global batch that does not divide among the ranks).
///
/// `description` is a complete sentence for the user: it names the file, says what is wrong
/// and, for a missing file, how to get it.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        case missingFile
        case corrupt
        case invalidArgument
        /// An image folder that does not have the expected layout (no classes, an empty class
        /// folder, a class only in val, an unsupported image format).
        case badLayout
    }

    public let kind: Kind
    /// The file concerned, if any.
    public let path: String?
    public let message: String

    public init(_ kind: Kind, path: String? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String {
        switch kind {
        case .missingFile: return "missing data file: \(message)"
        case .corrupt: return "corrupt data file \(path ?? "?"): \(message)"
        case .invalidArgument: return "invalid data request: \(message)"
        case .badLayout: return "image folder: \(message)"
        }
    }

    static func corrupt(_ path: String, _ message: String) -> DataError {
        DataError(.corrupt, path: path, message)
    }
}
