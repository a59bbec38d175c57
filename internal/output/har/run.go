package har

import (
	"context"
	"errors"

	"github.com/tlstap/tlstap/internal/broker"
)

// Run writes the events of sub to w until the subscription ends or ctx is
// done, then writes what the subscription still holds and closes the
// document. Output is flushed whenever the queue runs dry, so the file
// keeps up with the capture (though it is valid JSON only once closed).
func Run(ctx context.Context, sub *broker.Subscription, w *Writer) error {
	defer sub.Close()
	for {
		e, err := sub.Next(ctx)
		if errors.Is(err, broker.ErrClosed) {
			break
		}
		if err != nil {
			// Cancelled: the pipeline has flushed by now, so what is
			// queued is the rest of the run.
			for sub.Len() > 0 {
				e, err := sub.Next(context.Background())
				if err != nil {
					break
				}
				if err := add(w, e); err != nil {
					return err
				}
			}
			break
		}
		if err := add(w, e); err != nil {
			return err
		}
		if sub.Len() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	return w.Close()
}

func add(w *Writer, e *broker.Entry) error {
	if ev := e.Event(); ev != nil {
		return w.Add(ev)
	}
	return nil
}
