// Package replay is a capture source that plays a recording, at its
// recorded pace or as fast as possible, once or in a loop.
package replay
