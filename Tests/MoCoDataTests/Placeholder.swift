import XCTest
final class PlaceholderMoCoDataTests: XCTestCase { func testNothing() {} }
