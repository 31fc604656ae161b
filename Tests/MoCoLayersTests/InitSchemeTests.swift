import XCTest
import MoCoTensor
@testable import MoCoLayers

/// `--init`: the convolutions' weights follow each scheme's distribution; BatchNorm and the head
/// start the same under both.
final class InitSchemeTests: XCTestCase {
    func testSchemesDrawTheirDistributions() {
        let tv = Encoder(architecture: .resnet20, head: .mlp, inChannels: 1)
        let pt = Encoder(architecture: .resnet20, head: .mlp, inChannels: 1)
        tv.initialize(seed: 3, scheme: .torchvision)
        pt.initialize(seed: 3, scheme: .pytorch)
        for (a, b) in zip(tv.convs, pt.convs) where a.inChannels * a.kernel * a.kernel >= 144 {
            let n = a.outChannels * a.inChannels * a.kernel * a.kernel
            let wa = Array(UnsafeBufferPointer(start: tv.params.value(a.weightOffset), count: n))
            let wb = Array(UnsafeBufferPointer(start: pt.params.value(b.weightOffset), count: n))
            // torchvision: N(0, 2 / fan_out); std within 10% (n >= 2304 draws).
            let stdA = (wa.map { Double($0 * $0) }.reduce(0, +) / Double(n)).squareRoot()
            let wantA = (2.0 / Double(a.outChannels * a.kernel * a.kernel)).squareRoot()
            XCTAssertEqual(stdA, wantA, accuracy: 0.1 * wantA, a.name)
            // pytorch: U(±1/sqrt(fan_in)): inside the bound, std bound/sqrt(3) within 10%.
            let bound = 1 / Float(b.inChannels * b.kernel * b.kernel).squareRoot()
            XCTAssertLessThanOrEqual(wb.map { abs($0) }.max()!, bound, b.name)
            XCTAssertGreaterThan(wb.map { abs($0) }.max()!, 0.95 * bound, b.name)
            let stdB = (wb.map { Double($0 * $0) }.reduce(0, +) / Double(n)).squareRoot()
            XCTAssertEqual(stdB, Double(bound) / 3.0.squareRoot(), accuracy: 0.1 * Double(bound), b.name)
        }
        // BatchNorm starts at (1, 0) and the head at PyTorch's Linear default under both (the head's
        // draws come later in the shared stream, so their values differ; their law does not).
        for bn in tv.batchNorms {
            XCTAssertTrue(tv.params.array("\(bn.name).weight") == pt.params.array("\(bn.name).weight"), bn.name)
            XCTAssertTrue(tv.params.array("\(bn.name).bias") == pt.params.array("\(bn.name).bias"), bn.name)
        }
        for e in [tv, pt] {
            for lin in [e.fc0!, e.fc2!] {
                let bound = 1 / Float(lin.inFeatures).squareRoot()
                XCTAssertLessThanOrEqual(e.params.array("\(lin.name).weight").map { abs($0) }.max()!, bound, lin.name)
            }
        }
        XCTAssertEqual(tv.buffers.values.array, pt.buffers.values.array)
    }
}
