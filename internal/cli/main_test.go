package cli

import (
	"os"
	"testing"
)

// TestMain lets tests run this test binary as tlstap itself, in a process
// of its own they can signal or kill: see tlstapCmd.
func TestMain(m *testing.M) {
	if os.Getenv("TLSTAP_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
