import XCTest
final class PlaceholderMoCoTensorTests: XCTestCase { func testNothing() {} }
