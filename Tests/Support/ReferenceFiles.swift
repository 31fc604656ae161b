import Foundation

/// The PyTorch reference steps the tests pin whole MoCo steps against.
public enum ReferenceFiles {
    /// The repository's root (this file is `<root>/Tests/Support/ReferenceFiles.swift`).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The committed reference (`scripts/make_reference_step.py`, see Tests/MoCoTests/Resources/README.md).
    /// Always present in a clone: a test that cannot find it fails.
    public static var committed: String {
        root.appendingPathComponent("Tests/MoCoTests/Resources/moco_step_resnet20.safetensors").path
    }

    /// A committed test resource by file name (Tests/MoCoTests/Resources).
    public static func resource(_ name: String) -> String {
        root.appendingPathComponent("Tests/MoCoTests/Resources/\(name)").path
    }

    /// The committed short training trajectory (`scripts/pytorch_trajectory.py export`).
    public static var committedTrajectory: String {
        root.appendingPathComponent("Tests/MoCoTests/Resources/trajectory_short.safetensors").path
    }

    /// A second reference made independently of the project's scripts (`../shared/reference/`
    /// beside the repository, where CI and the developers' machines have it): checked in
    /// addition when present.
    public static var shared: String? {
        let p = root.deletingLastPathComponent().appendingPathComponent("shared/reference/moco_step_resnet20.safetensors").path
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    /// The committed reference, then the shared one when present.
    public static var all: [String] { [committed] + (shared.map { [$0] } ?? []) }
}
