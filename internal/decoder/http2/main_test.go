package http2

import (
	"testing"

	"go.uber.org/goleak"
)

// The decoder starts no goroutines; the tests' servers, clients and tools
// must all be gone when they end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
