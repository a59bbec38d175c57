package broker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Subscribers and blocked publishers are goroutines; none may outlive a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
