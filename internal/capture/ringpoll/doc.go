// Package ringpoll waits for BPF ring buffer records in Go's network poller
// (see Waiter), so a reader goroutine parks instead of holding a thread and
// its scheduler slot in epoll_wait.
package ringpoll
