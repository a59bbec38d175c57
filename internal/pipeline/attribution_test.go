package pipeline_test

import (
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
)

// fakeContainers answers from a table; ids in later become known only
// after the first question about them.
type fakeContainers struct {
	ids   map[uint64]string
	later map[uint64]bool
	asked map[uint64]int
}

func (f *fakeContainers) Lookup(cg uint64) (string, bool) {
	f.asked[cg]++
	if f.later[cg] && f.asked[cg] == 1 {
		return "", false
	}
	return f.ids[cg], true
}

// TestAttribution: every event carries the cgroup id of its connection's
// first chunk that had one and the container the resolver names for it;
// the resolver is asked once per connection unless its answer was not
// final.
func TestAttribution(t *testing.T) {
	const (
		docker = "3f1e2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef"
		late   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	withCgroup := func(c capture.Chunk, cg uint64) capture.Chunk { c.Cgroup = cg; return c }
	req := "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name          string
		chunks        []capture.Chunk
		resolver      bool
		wantCgroup    []uint64
		wantContainer []string // per event
		wantAsked     int
	}{
		{
			name:          "container",
			chunks:        []capture.Chunk{withCgroup(chunk(1*ms, 1, capture.Write, req), 7), withCgroup(chunk(2*ms, 1, capture.Read, resp), 7)},
			resolver:      true,
			wantCgroup:    []uint64{7, 7},
			wantContainer: []string{docker, docker},
			wantAsked:     1,
		},
		{
			name:          "host process",
			chunks:        []capture.Chunk{withCgroup(chunk(1*ms, 1, capture.Write, req), 8), withCgroup(chunk(2*ms, 1, capture.Read, resp), 8)},
			resolver:      true,
			wantCgroup:    []uint64{8, 8},
			wantContainer: []string{"", ""},
			wantAsked:     1,
		},
		{
			name:          "cgroup learned after the first event",
			chunks:        []capture.Chunk{chunk(1*ms, 1, capture.Write, req), withCgroup(chunk(2*ms, 1, capture.Read, resp), 7)},
			resolver:      true,
			wantCgroup:    []uint64{0, 7},
			wantContainer: []string{"", docker},
			wantAsked:     1,
		},
		{
			name:          "not final at first: asked again",
			chunks:        []capture.Chunk{withCgroup(chunk(1*ms, 1, capture.Write, req), 9), withCgroup(chunk(2*ms, 1, capture.Read, resp), 9)},
			resolver:      true,
			wantCgroup:    []uint64{9, 9},
			wantContainer: []string{"", late},
			wantAsked:     2,
		},
		{
			name:          "no resolver (replay): cgroup id only",
			chunks:        []capture.Chunk{withCgroup(chunk(1*ms, 1, capture.Write, req), 7), withCgroup(chunk(2*ms, 1, capture.Read, resp), 7)},
			wantCgroup:    []uint64{7, 7},
			wantContainer: []string{"", ""},
		},
		{
			name:          "unknown cgroup",
			chunks:        []capture.Chunk{chunk(1*ms, 1, capture.Write, req), chunk(2*ms, 1, capture.Read, resp)},
			resolver:      true,
			wantCgroup:    []uint64{0, 0},
			wantContainer: []string{"", ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeContainers{ids: map[uint64]string{7: docker, 9: late}, later: map[uint64]bool{9: true}, asked: map[uint64]int{}}
			opts := pipeline.Options{}
			if tc.resolver {
				opts.Containers = f
			}
			evs, _ := run(t, opts, tc.chunks...)
			if len(evs) != len(tc.wantContainer) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.wantContainer))
			}
			for i, ev := range evs {
				if ev.GetCgroupId() != tc.wantCgroup[i] {
					t.Errorf("event %d: cgroup_id %d, want %d", i, ev.GetCgroupId(), tc.wantCgroup[i])
				}
				if ev.GetContainerId() != tc.wantContainer[i] {
					t.Errorf("event %d: container_id %q, want %q", i, ev.GetContainerId(), tc.wantContainer[i])
				}
			}
			total := 0
			for _, n := range f.asked {
				total += n
			}
			if total != tc.wantAsked {
				t.Errorf("resolver asked %d times, want %d", total, tc.wantAsked)
			}
		})
	}
}
