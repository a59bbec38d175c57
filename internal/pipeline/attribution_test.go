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

// fakePods knows a container's pod only from its n-th question on.
type fakePods struct {
	known map[string][2]string
	from  int
	asked int
}

func (f *fakePods) Pod(id string) (string, string, bool) {
	f.asked++
	p, ok := f.known[id]
	if !ok || f.asked < f.from {
		return "", "", false
	}
	return p[0], p[1], true
}

// TestPodAttribution: a container's events carry its pod once the pod
// source knows it; before that they go out without it (never waiting),
// and once known it is not asked again; a host process's are never asked.
func TestPodAttribution(t *testing.T) {
	const docker = "3f1e2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef"
	withCgroup := func(c capture.Chunk, cg uint64) capture.Chunk { c.Cgroup = cg; return c }
	req := "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	three := func(cg uint64) []capture.Chunk {
		return []capture.Chunk{withCgroup(chunk(1*ms, 1, capture.Write, req), cg), withCgroup(chunk(2*ms, 1, capture.Read, resp), cg),
			withCgroup(chunk(3*ms, 1, capture.Write, req), cg)}
	}
	for _, tc := range []struct {
		name      string
		chunks    []capture.Chunk
		from      int
		wantPod   []string // namespace/name per event
		wantAsked int
	}{
		{"known at once", three(7), 1, []string{"shop/web", "shop/web", "shop/web"}, 1},
		{"learned at the second event", three(7), 2, []string{"/", "shop/web", "shop/web"}, 2},
		{"never known", three(7), 99, []string{"/", "/", "/"}, 3},
		{"host process", three(8), 1, []string{"/", "/", "/"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods := &fakePods{known: map[string][2]string{docker: {"shop", "web"}}, from: tc.from}
			opts := pipeline.Options{
				Containers: &fakeContainers{ids: map[uint64]string{7: docker}, asked: map[uint64]int{}},
				Pods:       pods,
			}
			evs, _ := run(t, opts, tc.chunks...)
			if len(evs) != len(tc.wantPod) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.wantPod))
			}
			for i, ev := range evs {
				if got := ev.GetPodNamespace() + "/" + ev.GetPodName(); got != tc.wantPod[i] {
					t.Errorf("event %d: pod %q, want %q", i, got, tc.wantPod[i])
				}
			}
			if pods.asked != tc.wantAsked {
				t.Errorf("pods asked %d times, want %d", pods.asked, tc.wantAsked)
			}
		})
	}
}
