package kubetest

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Runtime is a fake container runtime: docker's (GET /containers/ID/json)
// or CRI-O's (GET /containers/ID) inspect endpoint on a unix socket, with
// the JSON shapes they answer and the kubelet's pod labels.
type Runtime struct {
	// Spec is the --pods value: "docker:SOCKET" or "crio:SOCKET".
	Spec string
	kind string

	mu       sync.Mutex
	pods     map[string][2]string // container id -> namespace, name ("" name: no pod labels)
	fail     map[string]bool
	requests int
}

// NewRuntime serves kind ("docker" or "crio") until the test ends.
func NewRuntime(t testing.TB, kind string) *Runtime {
	t.Helper()
	sock := filepath.Join(t.TempDir(), kind+".sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runtime{Spec: kind + ":" + sock, kind: kind, pods: map[string][2]string{}, fail: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return r
}

// Add makes container id a container of pod namespace/name; an empty
// name makes it a container without pod labels.
func (r *Runtime) Add(id, namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pods[id] = [2]string{namespace, name}
}

// Fail makes inspecting id answer 500.
func (r *Runtime) Fail(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[id] = true
}

// Requests returns how many inspect requests were served.
func (r *Runtime) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *Runtime) serve(w http.ResponseWriter, req *http.Request) {
	id := strings.TrimPrefix(req.URL.Path, "/containers/")
	if r.kind == "docker" {
		var ok bool
		if id, ok = strings.CutSuffix(id, "/json"); !ok {
			http.NotFound(w, req)
			return
		}
	}
	r.mu.Lock()
	r.requests++
	p, ok := r.pods[id]
	fail := r.fail[id]
	r.mu.Unlock()
	if fail {
		http.Error(w, "runtime trouble", http.StatusInternalServerError)
		return
	}
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"No such container: ` + id + `"}`))
		return
	}
	labels := map[string]string{"io.kubernetes.container.name": "main"}
	if p[1] != "" {
		labels["io.kubernetes.pod.name"] = p[1]
		labels["io.kubernetes.pod.namespace"] = p[0]
		labels["io.kubernetes.pod.uid"] = "8d6f1b0e-0000-4000-8000-000000000001"
	}
	var v any
	if r.kind == "docker" {
		v = map[string]any{"Id": id, "Created": "2026-11-30T12:00:00Z", "State": map[string]any{"Status": "running", "Pid": 4242},
			"Name": "/k8s_main_" + p[1], "Config": map[string]any{"Hostname": p[1], "Image": "example/app:1", "Labels": labels}}
	} else {
		v = map[string]any{"name": "k8s_main_" + p[1], "pid": 4242, "image": "example/app:1", "created_time": 1764504000000000000,
			"labels": labels, "annotations": map[string]string{"io.kubernetes.pod.name": p[1]}, "root": "/", "sandbox": "s",
			"ip_addresses": []string{"10.0.0.7"}}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
