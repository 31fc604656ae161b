// libFuzzer target: the input is a whole checkpoint file (safetensors), as `--resume` and
// `WeightsFile.load` read it: `SafeTensorsFile(bytes:)`, then `Checkpoint.info` (format, epoch,
// step and the configuration JSON in the metadata), then the comparison `--resume` makes. A
// thrown error is the right answer to a bad file; a trap is a bug.
import MoCo
import SafeTensors

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let f = try? SafeTensorsFile(bytes: bytes), let info = try? Checkpoint.info(f) else { return 0 }
    precondition(info.epoch >= 0 && info.step >= 0)
    _ = TrainConfig().resumeMismatches(info.config)
    _ = try? info.config.validate(worldSize: 1)
    return 0
}
