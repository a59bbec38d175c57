package output_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestTextNodeAndContainer: the header names the node only when asked (a
// fleet watcher), and the container, shortened, and its pod whenever
// there is one.
func TestTextNodeAndContainer(t *testing.T) {
	const id = "3f1e2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef"
	for _, tc := range []struct {
		name       string
		r          output.TextRenderer
		node, cont string
		ns, pod    string
		want, not  []string
	}{
		{"fleet watcher", output.TextRenderer{Node: true}, "web-1", id, "", "", []string{" node=web-1", " container=3f1e2d4c5b6a"}, []string{id, "pod="}},
		{"local output", output.TextRenderer{}, "web-1", "", "", "", nil, []string{"node=", "container="}},
		{"no node to show", output.TextRenderer{Node: true}, "", "", "", "", nil, []string{"node="}},
		{"hostile node name", output.TextRenderer{Node: true}, "a\nb", "", "", "", []string{` node="a\nb"`}, nil},
		{"short container", output.TextRenderer{}, "", "abc", "", "", []string{" container=abc"}, nil},
		{"pod", output.TextRenderer{}, "", id, "shop", "web-7d9f", []string{" container=3f1e2d4c5b6a pod=shop/web-7d9f"}, nil},
		{"hostile pod name", output.TextRenderer{}, "", id, "a b", "c\nd", []string{` pod="a b/c\nd"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			ev := &eventpb.Event{Seq: 1, Pid: 7, Pname: "curl", Node: tc.node, ContainerId: tc.cont, PodNamespace: tc.ns, PodName: tc.pod, Payload: []byte("hi")}
			if err := tc.r.Render(&b, ev); err != nil {
				t.Fatal(err)
			}
			head, _, _ := strings.Cut(b.String(), "\n")
			for _, w := range tc.want {
				if !strings.Contains(head, w) {
					t.Errorf("header %q lacks %q", head, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(head, n) {
					t.Errorf("header %q has %q", head, n)
				}
			}
		})
	}
}
