import XCTest
final class PlaceholderMoCoLayersTests: XCTestCase { func testNothing() {} }
