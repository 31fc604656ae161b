// swift-tools-version:6.0
// swift-moco: distributed MoCo (He et al. 2020; Chen et al. 2020) on OpenMPI and OpenBLAS.
import PackageDescription

// Optional: `MOCO_TARGET_CPU=znver4 swift build -c release` compiles for a specific CPU
// (e.g. AVX-512). The default is the portable x86-64 baseline.
import Foundation
let targetCPU = ProcessInfo.processInfo.environment["MOCO_TARGET_CPU"]
let cpuFlags: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []

// Fuzzing (docs/fuzzing.md, scripts/fuzz.sh): with `MOCO_FUZZ=1` the libFuzzer targets under
// Fuzz/ exist and the engine modules are built without `-Ounchecked`, so that an overflow or an
// out-of-range index traps instead of passing silently. The sanitizers come from the command
// line (`swift build --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address`, scripts/fuzz.sh):
// every module is instrumented, and `--sanitize fuzzer` makes libFuzzer's `main` the
// executables' entry point. Without the variable nothing here changes the build.
let fuzzing = ProcessInfo.processInfo.environment["MOCO_FUZZ"] == "1"
let fast: [SwiftSetting] = fuzzing
    ? [.unsafeFlags(["-wmo"], .when(configuration: .release))] + cpuFlags
    : [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))] + cpuFlags

// The kernels (tensors, layers, optimizer, augmentation) are optimised in debug builds too, with
// Swift's checks kept (`-O`, not `-Ounchecked`): unoptimised, a small ResNet-20 job ran about 20x slower (docs/architecture.md),
// and the tests that train under mpirun would spend most of their time there. `swift build` and
// `swift test` still build the rest without optimisation, so the debugger sees the trainer.
let kernels: [SwiftSetting] = fast + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "swift-moco",
    platforms: [.macOS(.v13)],
    products: [.executable(name: "moco", targets: ["moco"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The runtime of the committed TensorBoard messages (Sources/TensorBoard); no build plugin.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C interop: system libraries through pkg-config, and a shim for MPI's handle macros.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CMPIShim", dependencies: ["CMPI"], path: "Sources/CMPIShim"),
        // Async-signal-safe handlers for preemption (SIGTERM, SIGINT, SIGUSR1).
        .target(name: "CSignals", path: "Sources/CSignals"),
        // The FMA peak probe of `moco bench step` (AVX2 + FMA by a target attribute on one function).
        .target(name: "CPeak", path: "Sources/CPeak", cSettings: [.unsafeFlags(["-O2"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Image folders (`--data folder`): PNG and JPEG through Debian's libpng and libjpeg-turbo,
        // called only from the C shim (both libraries report errors by longjmp).
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),
        .target(name: "CImageCodecs", dependencies: ["CPNG", "CJPEG"], path: "Sources/CImageCodecs"),

        // Engine: tensors and kernels -> layers and models -> optimizer.
        // The CPU's vector level, for choosing OpenBLAS's kernels (MoCoTensor/BLASCore.swift).
        .target(name: "CCPUFeatures", path: "Sources/CCPUFeatures"),
        // Winograd F(4x4, 3x3)'s transforms on AVX2 where the CPU has it (target attributes, so
        // the binary stays baseline x86-64); no FMA contraction, so they give the Swift path's bits.
        .target(name: "CWinograd", path: "Sources/CWinograd", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])]),
        // Direct convolution on AVX2 + FMA (strided convolutions and the stem), no im2col columns.
        .target(name: "CDirectConv", path: "Sources/CDirectConv", cSettings: [.unsafeFlags(["-O2"])]),
        // The persistent worker threads of `Parallel.run` (spin, then futex sleep, between regions).
        .target(name: "CWorkerPool", path: "Sources/CWorkerPool", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "MoCoTensor", dependencies: ["CBLAS", "CCPUFeatures", "CDirectConv", "CWinograd", "CWorkerPool"], swiftSettings: kernels),
        .target(name: "MoCoLayers", dependencies: ["MoCoTensor"], swiftSettings: kernels),
        .target(name: "MoCoOptim", dependencies: ["MoCoTensor"], swiftSettings: kernels),
        .target(name: "SafeTensors", dependencies: [], swiftSettings: fast),
        .target(name: "MoCoData", dependencies: ["MoCoTensor", "CZlib", "CImageCodecs", "SafeTensors"], swiftSettings: kernels),
        .target(name: "MoCoComm", dependencies: ["CMPIShim"], swiftSettings: fast),
        // TensorBoard event files: TFRecord framing, CRC-32C, the Event messages generated once
        // from tensorboard_event.proto (scripts/gen_tensorboard_proto.sh) and committed.
        .target(name: "TensorBoard",
                dependencies: ["SafeTensors", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["tensorboard_event.proto"]),
        .target(name: "MoCo",
                dependencies: ["MoCoTensor", "MoCoLayers", "MoCoOptim", "SafeTensors", "MoCoData", "MoCoComm", "CZlib", "TensorBoard"],
                swiftSettings: fast),
        // Benchmarks (`moco bench ...`): only the command-line programs depend on them.
        .target(name: "MoCoBench", dependencies: ["MoCo", "MoCoTensor", "MoCoLayers", "MoCoData", "MoCoComm", "CMPIShim", "CPeak"],
                swiftSettings: fast),
        .executableTarget(name: "moco",
                          dependencies: ["MoCo", "MoCoBench", "CSignals", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fast),

        // A small MPI program for the collective tests (run under mpirun by MoCoCommTests).
        .executableTarget(name: "moco-commcheck", dependencies: ["MoCoComm", "MoCoBench"], swiftSettings: fast),

        .testTarget(name: "MoCoTensorTests", dependencies: ["MoCoTensor", "CWinograd"]),
        .testTarget(name: "MoCoLayersTests", dependencies: ["MoCoLayers"]),
        .testTarget(name: "MoCoOptimTests", dependencies: ["MoCoOptim"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "MoCoTestSupport"]),
        .testTarget(name: "MoCoDataTests", dependencies: ["MoCoData"]),
        .testTarget(name: "MoCoCommTests", dependencies: ["MoCoComm", "MoCoTestSupport"]),
        .testTarget(name: "TensorBoardTests", dependencies: ["TensorBoard", "MoCo", "MoCoTestSupport"]),
        // Resources/: the PyTorch reference step (scripts/make_reference_step.py), read by path.
        .testTarget(name: "MoCoTests", dependencies: ["MoCo", "MoCoTestSupport"], exclude: ["Resources"]),
        .testTarget(name: "MoCoBenchTests", dependencies: ["MoCoBench", "MoCoComm"]),
        .testTarget(name: "CLITests", dependencies: ["MoCo", "MoCoTestSupport"]),
        .testTarget(name: "DistributedTests", dependencies: ["MoCo", "MoCoTestSupport"]),
        // Running built executables (and mpirun) from tests.
        .target(name: "MoCoTestSupport", path: "Tests/Support"),
    ]
)

if fuzzing {
    // One libFuzzer target per parser of outside bytes: `LLVMFuzzerTestOneInput` and no `main`
    // (libFuzzer's), hence `-parse-as-library`.
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzSafeTensorsHeader", ["SafeTensors"]),
        ("FuzzSafeTensorsFile", ["SafeTensors"]),
        ("FuzzIDX", ["MoCoData"]),
        ("FuzzIDXGzip", ["MoCoData"]),
        ("FuzzIDXPair", ["MoCoData"]),
        ("FuzzCIFAR", ["MoCoData"]),
        ("FuzzCheckpointConfig", ["MoCo"]),
        ("FuzzCheckpointInfo", ["MoCo", "SafeTensors"]),
        ("FuzzImage", ["MoCoData"]),
    ]
    for t in fuzzTargets {
        package.targets.append(.executableTarget(
            name: t.name, dependencies: t.dependencies, path: "Fuzz/\(t.name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
