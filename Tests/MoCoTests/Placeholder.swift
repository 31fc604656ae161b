import XCTest
final class PlaceholderMoCoTests: XCTestCase { func testNothing() {} }
