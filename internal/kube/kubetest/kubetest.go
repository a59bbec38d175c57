// Package kubetest is a fake Kubernetes API server for tests: it serves
// the pods list and watch of /api/v1/pods over TLS, with the JSON shapes
// the real one sends, a bearer token check, resource versions, watch
// resumption, compaction (410 Gone) and broken watch connections.
package kubetest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the fake API server.
type Server struct {
	*httptest.Server
	Token string
	// CAFile and TokenFile are written in the test's temporary directory.
	CAFile, TokenFile string

	mu      sync.Mutex
	rv      int
	pods    map[string]map[string]any // uid -> pod object
	history []event                   // every change, by resource version
	oldest  int                       // a watch from before this is 410 Gone
	changed chan struct{}             // closed and replaced on every change
	broken  chan struct{}             // closed and replaced by Break
	lists   int
	watches int
	bad     int // answer this many requests with 500 first
}

type event struct {
	rv  int
	typ string
	obj map[string]any
}

// New starts a server; it is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{Token: "tok-" + strconv.FormatInt(time.Now().UnixNano(), 36), pods: map[string]map[string]any{},
		changed: make(chan struct{}), broken: make(chan struct{}), rv: 1000}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	dir := t.TempDir()
	s.CAFile = filepath.Join(dir, "ca.crt")
	s.TokenFile = filepath.Join(dir, "token")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.TokenFile, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// AddPod creates a running pod on node whose containers have the given
// status ids (e.g. "containerd://<64 hex>"); init and ephemeral
// containers may be given with the "init:" and "eph:" prefixes. It
// returns the pod's uid.
func (s *Server) AddPod(namespace, name, node string, ids ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", len(s.history)+s.rv, time.Now().UnixNano()&0xffffffffffff)
	p := map[string]any{
		"kind":       "Pod",
		"apiVersion": "v1",
		"metadata": map[string]any{
			"name": name, "namespace": namespace, "uid": uid,
			"creationTimestamp": time.Now().UTC().Format(time.RFC3339),
			"labels":            map[string]any{"app": name},
		},
		"spec": map[string]any{
			"nodeName":   node,
			"containers": []any{map[string]any{"name": "main", "image": "example/app:1"}},
		},
	}
	p["status"] = status(ids)
	s.pods[uid] = p
	s.record("ADDED", p)
	return uid
}

// SetContainers replaces a pod's container ids (a restart): MODIFIED.
func (s *Server) SetContainers(uid string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[uid]
	p["status"] = status(ids)
	s.record("MODIFIED", p)
}

// DeletePod deletes a pod: DELETED.
func (s *Server) DeletePod(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[uid]
	delete(s.pods, uid)
	s.record("DELETED", p)
}

// Break drops every open watch connection mid-stream (no clean end).
func (s *Server) Break() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.broken)
	s.broken = make(chan struct{})
}

// Compact forgets the history: a watch resuming from before now gets
// 410 Gone and must list again.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = nil
	s.oldest = s.rv + 1
}

// FailNext answers the next n requests with 500.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.bad = n
	s.mu.Unlock()
}

// Counts returns how many lists and watches were served.
func (s *Server) Counts() (lists, watches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists, s.watches
}

func status(ids []string) map[string]any {
	st := map[string]any{"phase": "Running", "podIP": "10.244.0.7", "qosClass": "BestEffort"}
	var main, init, eph []any
	for i, id := range ids {
		c := map[string]any{
			"name": "c" + strconv.Itoa(i), "image": "example/app:1", "imageID": "sha256:00",
			"containerID": strings.TrimPrefix(strings.TrimPrefix(id, "init:"), "eph:"),
			"ready":       true, "restartCount": 0, "started": true,
			"state": map[string]any{"running": map[string]any{"startedAt": "2026-11-30T12:00:00Z"}},
		}
		switch {
		case strings.HasPrefix(id, "init:"):
			init = append(init, c)
		case strings.HasPrefix(id, "eph:"):
			eph = append(eph, c)
		default:
			main = append(main, c)
		}
	}
	st["containerStatuses"] = main
	if init != nil {
		st["initContainerStatuses"] = init
	}
	if eph != nil {
		st["ephemeralContainerStatuses"] = eph
	}
	return st
}

// record stores a change; s.mu held.
func (s *Server) record(typ string, p map[string]any) {
	s.rv++
	md := p["metadata"].(map[string]any)
	md["resourceVersion"] = strconv.Itoa(s.rv)
	cp, _ := json.Marshal(p)
	var obj map[string]any
	_ = json.Unmarshal(cp, &obj)
	s.history = append(s.history, event{rv: s.rv, typ: typ, obj: obj})
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	s.mu.Lock()
	if s.bad > 0 {
		s.bad--
		s.mu.Unlock()
		writeStatus(w, http.StatusInternalServerError, "InternalError", "injected failure")
		return
	}
	s.mu.Unlock()
	if r.URL.Path != "/api/v1/pods" || r.Method != http.MethodGet {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	q := r.URL.Query()
	node, ok := strings.CutPrefix(q.Get("fieldSelector"), "spec.nodeName=")
	if !ok {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "want fieldSelector=spec.nodeName=NODE")
		return
	}
	if q.Get("watch") == "true" {
		s.watch(w, r, node, q.Get("resourceVersion"))
		return
	}
	s.mu.Lock()
	s.lists++
	items := []any{}
	for _, p := range s.pods {
		if onNode(p, node) {
			items = append(items, p)
		}
	}
	list := map[string]any{"kind": "PodList", "apiVersion": "v1",
		"metadata": map[string]any{"resourceVersion": strconv.Itoa(s.rv)}, "items": items}
	b, err := json.Marshal(list)
	s.mu.Unlock()
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func onNode(p map[string]any, node string) bool {
	return p["spec"].(map[string]any)["nodeName"] == node
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, node, rvs string) {
	from, err := strconv.Atoi(rvs)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "resourceVersion "+strconv.Quote(rvs))
		return
	}
	s.mu.Lock()
	s.watches++
	gone := from < s.oldest
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	fl := w.(http.Flusher)
	enc := json.NewEncoder(w)
	if gone {
		// As the real server does: 200, then an ERROR event.
		enc.Encode(map[string]any{"type": "ERROR", "object": map[string]any{"kind": "Status", "apiVersion": "v1",
			"status": "Failure", "message": "too old resource version: " + rvs, "reason": "Expired", "code": 410}})
		fl.Flush()
		return
	}
	fl.Flush()
	last := from
	for {
		s.mu.Lock()
		var out []event
		for _, e := range s.history {
			if e.rv > last && onNode(e.obj, node) {
				out = append(out, e)
			}
			if e.rv > last {
				last = e.rv
			}
		}
		changed, broken := s.changed, s.broken
		s.mu.Unlock()
		for _, e := range out {
			enc.Encode(map[string]any{"type": e.typ, "object": e.obj})
		}
		fl.Flush()
		select {
		case <-changed:
		case <-broken:
			panic(http.ErrAbortHandler) // the connection is cut, not ended
		case <-r.Context().Done():
			return
		}
	}
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
}
