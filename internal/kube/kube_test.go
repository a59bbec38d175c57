package kube_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/kube"
	"github.com/tlstap/tlstap/internal/kube/kubetest"
	"github.com/tlstap/tlstap/internal/stats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hexID(c byte) string { return strings.Repeat(string(c), 64) }

func TestContainerID(t *testing.T) {
	id := "3f1e2d4c5b6a79880716253443526170" + "8f9e0d1c2b3a49586776859403122130"
	for _, tt := range []struct{ in, want string }{
		{"containerd://" + id, id},
		{"cri-o://" + id, id},
		{"docker://" + id, id},
		{"docker://" + strings.ToUpper(id), id},
		{"", ""},
		{id, ""},              // no runtime
		{"containerd://", ""}, // not started yet
		{"containerd://a/b", ""},
		{"containerd://a:b", ""},
	} {
		if got := kube.ContainerID(tt.in); got != tt.want {
			t.Errorf("ContainerID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	srv := kubetest.New(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, tt := range []struct {
		name string
		o    kube.Options
		want string
	}{
		{"no node", kube.Options{API: srv.URL}, "no node"},
		{"bad scheme", kube.Options{API: "ftp://x", Node: "n"}, "want in-cluster"},
		{"no host", kube.Options{API: "https://", Node: "n"}, "want in-cluster"},
		{"query", kube.Options{API: "https://h?x=1", Node: "n"}, "want in-cluster"},
		{"user", kube.Options{API: "https://u:p@h", Node: "n"}, "want in-cluster"},
		{"missing CA", kube.Options{API: srv.URL, Node: "n", CAFile: filepath.Join(dir, "nope")}, "CA"},
		{"CA not PEM", kube.Options{API: srv.URL, Node: "n", CAFile: empty}, "no PEM"},
		{"missing token", kube.Options{API: srv.URL, Node: "n", TokenFile: filepath.Join(dir, "nope")}, "token"},
		{"empty token", kube.Options{API: srv.URL, Node: "n", TokenFile: empty}, "no single-line token"},
		{"not in a pod", kube.Options{API: kube.InCluster, Node: "n"}, "KUBERNETES_SERVICE_HOST"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kube.New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// run starts a watcher of node "node-a" against srv; it stops when the
// test ends.
func run(t *testing.T, srv *kubetest.Server) (*kube.Watcher, *stats.Set) {
	t.Helper()
	st := stats.NewSet()
	w, err := kube.New(kube.Options{API: srv.URL, TokenFile: srv.TokenFile, CAFile: srv.CAFile, Node: "node-a",
		Stats: st, Backoff: backoff.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w, st
}

// eventually waits (generously: the machine is shared) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func has(w *kube.Watcher, id string, want kube.Pod) func() bool {
	return func() bool { p, ok := w.Lookup(id); return ok && p == want }
}

func gone(w *kube.Watcher, id string) func() bool {
	return func() bool { _, ok := w.Lookup(id); return !ok }
}

func TestListAndWatch(t *testing.T) {
	srv := kubetest.New(t)
	web := kube.Pod{Namespace: "shop", Name: "web-7d9f"}
	srv.AddPod(web.Namespace, web.Name, "node-a", "containerd://"+hexID('a'), "init:containerd://"+hexID('b'))
	srv.AddPod("other", "elsewhere", "node-b", "containerd://"+hexID('c'))
	w, st := run(t, srv)

	// The list: main and init containers; another node's pods are not asked for.
	eventually(t, "the listed pod", has(w, hexID('a'), web))
	eventually(t, "its init container", has(w, hexID('b'), web))
	if _, ok := w.Lookup(hexID('c')); ok {
		t.Error("a pod of node-b is mapped")
	}

	// The watch: a new pod (CRI-O, with an ephemeral container), a
	// restart (MODIFIED with a new container id), a deletion.
	db := kube.Pod{Namespace: "shop", Name: "db-0"}
	uid := srv.AddPod(db.Namespace, db.Name, "node-a", "cri-o://"+hexID('d'), "eph:docker://"+hexID('e'))
	eventually(t, "the added pod", has(w, hexID('d'), db))
	eventually(t, "its ephemeral container", has(w, hexID('e'), db))
	srv.SetContainers(uid, "cri-o://"+hexID('f'))
	eventually(t, "the restarted container", has(w, hexID('f'), db))
	eventually(t, "the old container forgotten", gone(w, hexID('d')))
	srv.DeletePod(uid)
	eventually(t, "the deleted pod forgotten", gone(w, hexID('f')))

	// A watch that breaks resumes at its resource version: what changed
	// meanwhile arrives, and nothing is listed again.
	lists, watches := srv.Counts()
	srv.Break()
	api := kube.Pod{Namespace: "kube-system", Name: "apiserver"}
	srv.AddPod(api.Namespace, api.Name, "node-a", "containerd://"+hexID('1'))
	eventually(t, "the pod added across the break", has(w, hexID('1'), api))
	eventually(t, "a new watch", func() bool { _, n := srv.Counts(); return n > watches })
	if l, _ := srv.Counts(); l != lists {
		t.Errorf("%d lists after a broken watch, want %d (resume, not list)", l, lists)
	}

	// A resume the server no longer has history for (410 Gone) lists again.
	srv.Compact()
	srv.Break()
	eventually(t, "a list after 410", func() bool { l, _ := srv.Counts(); return l > lists })
	last := kube.Pod{Namespace: "shop", Name: "after-gone"}
	srv.AddPod(last.Namespace, last.Name, "node-a", "docker://"+hexID('2'))
	eventually(t, "the pod added after the new list", has(w, hexID('2'), last))
	eventually(t, "the older pods still mapped", has(w, hexID('a'), web))
	if v := st.Value("tlstap_pods_containers"); v != 4 { // a, b, 1, 2
		t.Errorf("tlstap_pods_containers = %v, want 4", v)
	}
	if v := st.Value("tlstap_pods_api_errors_total"); v < 1 {
		t.Errorf("tlstap_pods_api_errors_total = %v, want the broken watch counted", v)
	}
}

// TestRetry: an API that fails (500) and one with the wrong token are
// counted and retried; the pods arrive once it answers.
func TestRetry(t *testing.T) {
	srv := kubetest.New(t)
	srv.FailNext(3)
	p := kube.Pod{Namespace: "a", Name: "b"}
	srv.AddPod(p.Namespace, p.Name, "node-a", "containerd://"+hexID('9'))
	w, st := run(t, srv)
	eventually(t, "the pod after failures", has(w, hexID('9'), p))
	if v := st.Value("tlstap_pods_api_errors_total"); v < 3 {
		t.Errorf("tlstap_pods_api_errors_total = %v, want >= 3", v)
	}

	bad := kubetest.New(t)
	os.WriteFile(bad.TokenFile, []byte("wrong\n"), 0o600)
	w2, err := kube.New(kube.Options{API: bad.URL, TokenFile: bad.TokenFile, CAFile: bad.CAFile, Node: "n", Stats: st,
		Backoff: backoff.Backoff{Min: time.Millisecond, Max: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w2.Run(ctx) }()
	before := st.Value("tlstap_pods_api_errors_total")
	eventually(t, "401s counted", func() bool { return st.Value("tlstap_pods_api_errors_total") >= before+2 })
	cancel()
	<-done
}

// TestNilWatcher: no watcher configured looks up nothing.
func TestNilWatcher(t *testing.T) {
	var w *kube.Watcher
	if _, ok := w.Lookup(hexID('a')); ok {
		t.Fatal("nil watcher found a pod")
	}
}
