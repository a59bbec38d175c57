package ringpoll

import "time"

// NextLinger is how long the next Wait lingers (0: parks at once); only
// the waiting goroutine may ask.
var NextLinger = func(w *Waiter) time.Duration { return w.linger }

// SetDense replaces DenseWakes and DenseGap for w, before its first Wait.
func SetDense(w *Waiter, wakes int, gap time.Duration) { w.denseWakes, w.denseGap = wakes, gap }

// SetQuiet replaces Quiet for w, before its first Wait.
func SetQuiet(w *Waiter, d time.Duration) { w.quiet = d }
