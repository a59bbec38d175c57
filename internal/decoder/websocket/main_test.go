package websocket_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The live tests run real clients and servers; none may outlive its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
