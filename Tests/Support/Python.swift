import Foundation
import XCTest

/// A Python interpreter that imports `modules` (for the tests that run TensorBoard's reader or
/// scripts/plot_runs.py): `MOCO_TB_PYTHON` (.ci/run sets it to its venv's, which has tensorboard
/// and matplotlib), else `python3` on PATH. When it is missing or lacks a module the test is
/// skipped, except under CI=true, where it fails: CI must run these tests.
public func pythonWith(modules: [String], file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    let env = ProcessInfo.processInfo.environment
    let candidate = env["MOCO_TB_PYTHON"].map { URL(fileURLWithPath: $0) } ?? findOnPath("python3")
    var problem = "no python3 on PATH and MOCO_TB_PYTHON is not set"
    if let candidate {
        let r = try runProcess(candidate, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")], timeout: 60)
        if r.status == 0 { return candidate }
        problem = "\(candidate.path) cannot import \(modules.joined(separator: ", ")): \(r.stderr.suffix(300))"
    }
    if env["CI"] == "true" {
        XCTFail("required in CI (.ci/run installs it and sets MOCO_TB_PYTHON): \(problem)", file: file, line: line)
    }
    throw XCTSkip("\(problem) (pip install \(modules.joined(separator: " ")); MOCO_TB_PYTHON=/path/to/python)")
}

/// The repository's root (for scripts/), from this source file's place in it.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
