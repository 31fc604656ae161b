// libFuzzer target: the input is the text of a training configuration as a checkpoint's
// `config` metadata (and `OUT/config.json`) holds it, read by `TrainConfig.from(json:)` (both
// the nested layout and the legacy flat one), then validated and compared with the defaults as
// `--resume` does. A configuration that validates must survive being written again: reading
// `jsonString()` must give it back unchanged, or a checkpoint of that run could not be resumed.
// A thrown error is the right answer to bad text; a trap is a bug.
import MoCo

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let c = try? TrainConfig.from(json: text) else { return 0 }
    _ = TrainConfig().resumeMismatches(c)
    guard (try? c.validate(worldSize: 1)) != nil else { return 0 }
    let again = try! TrainConfig.from(json: c.jsonString(pretty: false))
    precondition(again == c, "configuration changed in a round trip")
    return 0
}
