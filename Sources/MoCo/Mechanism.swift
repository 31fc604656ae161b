/// How the negatives (the "dictionary") are obtained and the keys encoded: the three
/// mechanisms He et al. 2020 compare (Fig. 2, Fig. 3), `--mechanism`.
public enum Mechanism: String, CaseIterable, Sendable, Codable {
    /// A momentum key encoder and a FIFO queue of K earlier keys (He et al. 2020, `MoCoModel`).
    case moco
    /// One stored feature per training image, momentum-updated; K negatives sampled from it
    /// (Wu et al. 2018, "InstDisc"; `MemoryBankMethod`).
    case memoryBank = "memory-bank"
    /// Keys from the query encoder itself with gradients; the negatives are the other keys of
    /// the global batch (He et al. 2020, Fig. 2a; `EndToEndMethod`).
    case endToEnd = "end-to-end"
    /// MoCo v3 (Chen, Xie, He 2021): momentum keys of the global batch as negatives (no queue),
    /// a predictor on the query side, the symmetric loss scaled by 2T (`MoCoV3Method`).
    case mocoV3 = "moco-v3"
}

/// The contrastive objective over one positive and K negatives, `--loss`.
public enum ContrastLoss: String, CaseIterable, Sendable, Codable {
    /// Softmax cross-entropy over the 1 + K logits divided by T (van den Oord et al. 2018;
    /// He et al. 2020, eq. 1).
    case infonce
    /// Noise-contrastive estimation with a fixed normaliser Z and uniform noise 1/N
    /// (Wu et al. 2018, eq. 3-7; `NCE`).
    case nce
}
