package openssl

import "github.com/tlstap/tlstap/internal/capture/watch"

// Stats are counters since the Source was created.
type Stats struct {
	// Calls and Bytes count SSL_read/SSL_write calls that moved plaintext
	// and their bytes, whether or not the bytes reached user space.
	Calls, Bytes uint64
	// Records is the number of data records the kernel put in the ring.
	Records uint64
	// Lost bytes by reason: the ring was full, the call exceeded the
	// per-call cap (MaxCallBytes), or the buffer could not be read (page
	// not resident).
	LostRingBytes, LostCapBytes, LostFaultBytes uint64
	// LostRingRecords counts data records that did not fit in the ring;
	// LostNotices counts Close and Lost notices that did not.
	LostRingRecords, LostNotices uint64
	// ExcludedConns counts connections dropped because one end is
	// tlstap's own (see ExcludeEndpoint); ExcludedRecords and
	// ExcludedBytes what they would have delivered.
	ExcludedConns, ExcludedRecords, ExcludedBytes uint64
	// Received is the number of records user space read; Malformed the
	// ones it could not decode.
	Received, Malformed uint64
}

// Limits compiled into the BPF programs (MAX_DATA, MAX_CALL_CHUNKS).
const (
	// MaxData is the most plaintext one Chunk carries: one TLS record's
	// worth. Larger calls arrive as several chunks.
	MaxData = 16384
	// MaxCallBytes is how much of one SSL call is captured; the rest is
	// reported lost.
	MaxCallBytes = 256 * MaxData
)

// Stats sums the per-CPU kernel counters and adds user-space ones. After
// Close it returns the counters as they were when the source closed.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.final
	}
	return s.statsLocked()
}

// statsLocked reads the counters; s.mu is held so Close cannot free the
// map under it.
func (s *Source) statsLocked() Stats {
	var st Stats
	fields := []*uint64{
		&st.Calls, &st.Bytes, &st.Records,
		&st.LostRingBytes, &st.LostRingRecords, &st.LostCapBytes,
		&st.LostFaultBytes, &st.LostNotices,
		&st.ExcludedConns, &st.ExcludedRecords, &st.ExcludedBytes,
	}
	for i, f := range fields {
		var perCPU []uint64
		if s.objs.TlstapStats.Lookup(uint32(i), &perCPU) != nil {
			break
		}
		for _, v := range perCPU {
			*f += v
		}
	}
	st.Received = s.received.Load()
	st.Malformed = s.malformed.Load()
	return st
}

// WatcherStats returns the watcher's counters (zero when there is no
// watcher): how many files and processes it looked at, which is what
// costs an idle tlstap CPU when other programs start.
func (s *Source) WatcherStats() watch.Stats {
	if s.watcher == nil {
		return watch.Stats{}
	}
	return s.watcher.Stats()
}
