package kube_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tlstap/tlstap/internal/kube"
	"github.com/tlstap/tlstap/internal/kube/kubetest"
	"github.com/tlstap/tlstap/internal/stats"
)

func TestParseRuntime(t *testing.T) {
	for _, tt := range []struct {
		in, kind, socket string
		ok               bool
	}{
		{"docker:/var/run/docker.sock", "docker", "/var/run/docker.sock", true},
		{"crio:/var/run/crio/crio.sock", "crio", "/var/run/crio/crio.sock", true},
		{"https://10.0.0.1:6443", "", "", false},
		{"in-cluster", "", "", false},
		{"containerd:/run/containerd/containerd.sock", "", "", false},
		{"docker://x", "", "", false},
	} {
		kind, socket, ok := kube.ParseRuntime(tt.in)
		if kind != tt.kind || socket != tt.socket || ok != tt.ok {
			t.Errorf("ParseRuntime(%q) = %q %q %v, want %q %q %v", tt.in, kind, socket, ok, tt.kind, tt.socket, tt.ok)
		}
	}
	if _, err := kube.NewRuntime("docker:", nil, nil); err == nil {
		t.Error("NewRuntime without a socket: no error")
	}
}

// TestRuntime: for docker and CRI-O, a pod's container is named after
// the first question (which never waits); a container without pod
// labels, one the runtime does not know and one it fails on are not, and
// the failure is counted.
func TestRuntime(t *testing.T) {
	for _, kind := range []string{kube.RuntimeDocker, kube.RuntimeCRIO} {
		t.Run(kind, func(t *testing.T) {
			pod := kube.Pod{Namespace: "shop", Name: "web-7d9f"}
			rt := kubetest.NewRuntime(t, kind)
			rt.Add(hexID('a'), pod.Namespace, pod.Name)
			rt.Add(hexID('b'), "", "")
			rt.Fail(hexID('d'))
			st := stats.NewSet()
			r, err := kube.NewRuntime(rt.Spec, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { r.Run(ctx) })
			defer func() { cancel(); wg.Wait() }()

			if _, _, ok := r.Pod(hexID('a')); ok {
				t.Fatal("known before the runtime was asked")
			}
			eventually(t, "the pod from the runtime", func() bool {
				ns, name, ok := r.Pod(hexID('a'))
				return ok && (kube.Pod{Namespace: ns, Name: name}) == pod
			})
			for _, c := range []byte{'b', 'c', 'd'} {
				r.Pod(hexID(c))
			}
			eventually(t, "the failure counted", func() bool { return st.Value("tlstap_pods_api_errors_total") == 1 })
			for _, c := range []byte{'b', 'c', 'd'} {
				if ns, name, ok := r.Pod(hexID(c)); ok {
					t.Errorf("container %c: pod %s/%s, want none", c, ns, name)
				}
			}
			if v := st.Value("tlstap_pods_containers"); v != 1 {
				t.Errorf("tlstap_pods_containers = %v, want 1", v)
			}
			// Unknown answers are remembered: asking again costs no request.
			n := rt.Requests()
			for range 100 {
				r.Pod(hexID('c'))
			}
			if rt.Requests() != n {
				t.Errorf("%d more requests for a container already found unknown", rt.Requests()-n)
			}
		})
	}
}
