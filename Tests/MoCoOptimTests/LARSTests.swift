import XCTest
import MoCoTensor
@testable import MoCoOptim

final class LARSTests: XCTestCase {
    /// A weight matrix (adapted, decayed) and a bias (neither), two steps by hand with MoCo v3's
    /// rule: d = (g + wd·w)·η‖w‖/‖g + wd·w‖ for ndim > 1, d = g otherwise; v = μv + d; w -= lr·v.
    func testTwoStepsByHand() {
        let store = ParameterStore()
        store.register("w", shape: [1, 2])
        store.register("b", shape: [1])
        store.finalize()
        store.set("w", [3, 4]); store.set("b", [1])
        let lars = LARS(store, momentum: 0.9, weightDecay: 0.5, trust: 0.1)
        let gw = store.grad(store.entry("w")!.offset), gb = store.grad(store.entry("b")!.offset)
        gw[0] = 0.5; gw[1] = -2; gb[0] = 2
        lars.step(lr: 1)
        // d = [0.5 + 1.5, -2 + 2] = [2, 0], |w| = 5, |d| = 2: d · 0.1·5/2 = [0.5, 0]
        XCTAssertEqual(store.array("w")[0], 2.5, accuracy: 1e-6)
        XCTAssertEqual(store.array("w")[1], 4, accuracy: 1e-6)
        XCTAssertEqual(store.array("b")[0], -1, accuracy: 1e-6)   // 1 - 1·2: no decay, no scaling
        gw[0] = 0; gw[1] = 0; gb[0] = 0
        lars.step(lr: 0.5)
        // d = 0.5·[2.5, 4] = [1.25, 2], |w| = sqrt(22.25), |d| = sqrt(5.5625): scale 0.1·2 = 0.2
        // d = [0.25, 0.4]; v = 0.9·[0.5, 0] + d = [0.7, 0.4]; w -= 0.5 v
        XCTAssertEqual(store.array("w")[0], 2.5 - 0.35, accuracy: 1e-6)
        XCTAssertEqual(store.array("w")[1], 4 - 0.2, accuracy: 1e-6)
        XCTAssertEqual(store.array("b")[0], -1 - 0.5 * 0.9 * 2, accuracy: 1e-6)
    }

    /// A zero weight tensor is not adapted (trust ratio 1), as in the reference implementation.
    func testZeroNormIsNotScaled() {
        let store = ParameterStore()
        store.register("w", shape: [2, 1])
        store.finalize()
        let lars = LARS(store, momentum: 0, weightDecay: 0, trust: 0.001)
        store.grads.ptr[0] = 1; store.grads.ptr[1] = 1
        lars.step(lr: 0.1)
        XCTAssertEqual(store.array("w"), [-0.1, -0.1])
    }
}
