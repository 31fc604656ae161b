import XCTest
final class PlaceholderMoCoOptimTests: XCTestCase { func testNothing() {} }
