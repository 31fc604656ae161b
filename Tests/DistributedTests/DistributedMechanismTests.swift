import XCTest
import Foundation
import MoCoTestSupport

/// The memory bank (with NCE), end-to-end and MoCo v3 under mpirun (issue 11): W ranks compute what one
/// process with `--bn-splits W` computes, the bank and Z stay identical on every rank, and a
/// rank whose bank diverges is caught. Same tiny configuration and tolerances as the MoCo tests.
extension DistributedTrainingTests {
    static let mechanisms: [(name: String, args: [String], required: [String])] = [
        ("memory-bank", ["--mechanism", "memory-bank", "--loss", "nce"],
         ["memory_bank", "nce_z", "encoder_q.conv1.weight", "optimizer.momentum_buffer.conv1.weight"]),
        ("end-to-end", ["--mechanism", "end-to-end"],
         ["encoder_q.conv1.weight", "encoder_q.fc.2.weight", "optimizer.momentum_buffer.conv1.weight"]),
        ("moco-v3", ["--preset", "moco-v3"],
         ["encoder_q.fc.3.weight", "encoder_q.predictor.3.weight", "encoder_k.fc.3.weight", "encoder_k.conv1.weight",
          "optimizer.momentum_buffer.predictor.0.weight"]),
    ]

    /// Losses over 4 steps of the other mechanisms, 4 ranks against 1 process. On the AVX-512
    /// machine of 2 December 2026 (OpenBLAS's Cooperlake kernels) one of them differed by
    /// 2.45e-3 at step 4 (2.8649 vs 2.8579), against the 1e-3 that held on the AVX2 machines
    /// before: the same chaos at the rounding level as `runTolerance` describes, with other GEMM
    /// kernels. Since the gradient buckets use Open MPI's ring allreduce (7 December 2026), whose
    /// partial sums meet in another order than its binomial tree's, one differs by 5.5e-3 at step
    /// 4 on the Zen 3 machine (2.8713 vs 2.8555; 2.45e-3 again with
    /// OMPI_MCA_coll_libnbc_iallreduce_algorithm=2): the order of a sum of 4 ranks' gradients,
    /// amplified by 4 steps of BatchNorm over 4 samples. 1e-2 keeps a 2x margin; the one-step
    /// comparison above (`stepTolerance` 1e-4 on every tensor; measured 7e-6 with the ring) is
    /// what catches a semantic difference.
    static let mechanismRunTolerance = 1e-2

    func testMechanismsOnTwoAndFourRanksMatchOneProcess() throws {
        for m in Self.mechanisms {
            // One step: every tensor, including the bank, Z and SGD's momentum (= the gradient).
            let one = Self.exact + m.args + ["--epochs", "1", "--train-subset", "16", "--check-consistency", "1"]
            _ = try train(ranks: nil, one + ["--bn-splits", "2", "--out", out("\(m.name)-single")])
            _ = try train(ranks: 2, one + ["--out", out("\(m.name)-mpi")])
            try assertSameStep(out("\(m.name)-single") + "/checkpoint_0001.safetensors",
                               out("\(m.name)-mpi") + "/checkpoint_0001.safetensors",
                               "\(m.name): 2 ranks vs 1 process with --bn-splits 2, 1 step", required: m.required)
            // Four steps on 4 ranks, consistency checked after each: the losses of 1 process.
            let four = Self.exact + m.args + ["--epochs", "1", "--check-consistency", "1"]
            _ = try train(ranks: nil, four + ["--bn-splits", "4", "--out", out("\(m.name)-single4")])
            let r = try train(ranks: 4, four + ["--out", out("\(m.name)-mpi4")])
            XCTAssertTrue(r.stdout.contains("done: 1 epochs, 4 steps"), r.stdout)
            try assertSameLosses(out("\(m.name)-single4"), out("\(m.name)-mpi4"), count: 4, tolerance: Self.mechanismRunTolerance)
        }
    }

    /// A bank changed on rank 1 after step 2 is caught at that step by `--check-consistency`.
    func testDivergentMemoryBankIsCaught() throws {
        let bad = try train(ranks: 2, Self.tiny + ["--mechanism", "memory-bank", "--epochs", "1", "--check-consistency", "1",
                                                   "--out", out("bank-bad")],
                            env: ["MOCO_PERTURB_QUEUE_AT": "1:2"], expectSuccess: false)
        XCTAssertNotEqual(bad.status, 0, bad.stdout)
        XCTAssertTrue(bad.stderr.contains("consistency check failed at step 2: memory bank"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("rank(s) 1 differ from rank 0"), bad.stderr)
        XCTAssertFalse(bad.stderr.contains("MPI_ABORT"), bad.stderr)
    }
}
