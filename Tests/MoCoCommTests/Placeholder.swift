import XCTest
final class PlaceholderMoCoCommTests: XCTestCase { func testNothing() {} }
