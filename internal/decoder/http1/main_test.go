package http1

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: the decoder
// starts none, and the recording servers and clients must all be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
