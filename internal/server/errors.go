package server

import "fmt"

// ListenError is a listener New could not bind, typically because its
// port is in use.
type ListenError struct {
	Listener string // "main" or "ecaptureq"
	Addr     string
	Err      error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("server: %s listener %s: %v", e.Listener, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Main reports whether the error is the main listener's.
func (e *ListenError) Main() bool { return e.Listener == listenerMain }

// StateDirError is a state directory New could not keep its token or
// certificate in.
type StateDirError struct {
	Dir string
	Err error
}

func (e *StateDirError) Error() string {
	return fmt.Sprintf("server: state directory %s: %v", e.Dir, e.Err)
}

func (e *StateDirError) Unwrap() error { return e.Err }
