package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/stats"
)

// Container runtimes whose local HTTP API names a container's pod by the
// labels the kubelet sets (io.kubernetes.pod.name, .namespace).
const (
	// RuntimeDocker is "docker:SOCKET": GET /containers/ID/json,
	// Config.Labels (docker with cri-dockerd).
	RuntimeDocker = "docker"
	// RuntimeCRIO is "crio:SOCKET": GET /containers/ID, labels (CRI-O's
	// inspect endpoint on its CRI socket).
	RuntimeCRIO = "crio"
)

// Kubernetes labels a runtime keeps on a pod's containers.
const (
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
)

// Runtime bounds.
const (
	// maxQueue bounds the containers waiting to be asked about; more are
	// dropped, counted, and asked about at a later event.
	maxQueue = 256
	// unknownFor is how long a container the runtime does not name (not a
	// pod's, or not found) is not asked about again.
	unknownFor     = time.Minute
	runtimeTimeout = 5 * time.Second
)

// ParseRuntime splits "docker:/path" or "crio:/path" into the runtime
// and its socket; ok is false for anything else (an API URL).
func ParseRuntime(s string) (kind, socket string, ok bool) {
	kind, socket, ok = strings.Cut(s, ":")
	if !ok || (kind != RuntimeDocker && kind != RuntimeCRIO) || strings.HasPrefix(socket, "//") {
		return "", "", false
	}
	return kind, socket, true
}

// Runtime asks a container runtime's local socket for the pod labels of
// each container the pipeline asks about. Pod never blocks: a container
// not known yet is queued for Run to look up, and a later event finds
// the answer.
type Runtime struct {
	kind   string
	client *http.Client
	log    *slog.Logger

	queue chan string

	mu      sync.Mutex
	known   map[string]Pod
	unknown map[string]time.Time // container -> when it may be asked again
	queued  map[string]bool

	errs, dropped *stats.Counter
	known2        *stats.Gauge
}

// NewRuntime returns a Runtime for "docker:SOCKET" or "crio:SOCKET".
// st and log may be nil.
func NewRuntime(spec string, st *stats.Set, log *slog.Logger) (*Runtime, error) {
	kind, socket, ok := ParseRuntime(spec)
	if !ok || socket == "" {
		return nil, fmt.Errorf("kube: runtime %q: want docker:SOCKET or crio:SOCKET", spec)
	}
	if st == nil {
		st = stats.NewSet()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &net.Dialer{Timeout: runtimeTimeout}
	return &Runtime{
		kind: kind,
		client: &http.Client{Timeout: runtimeTimeout, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConns: 1,
		}},
		log:     log.With("component", "pods", "runtime", kind, "socket", socket),
		queue:   make(chan string, maxQueue),
		known:   map[string]Pod{},
		unknown: map[string]time.Time{},
		queued:  map[string]bool{},
		errs:    st.Counter("tlstap_pods_api_errors_total", "Kubernetes API list and watch failures (each is retried)."),
		dropped: st.Counter("tlstap_pods_lookups_dropped_total", "Container runtime lookups not queued because the queue was full (asked again at a later event)."),
		known2:  st.Gauge("tlstap_pods_containers", "Containers currently mapped to a pod."),
	}, nil
}

// Pod is pipeline.Pods: the pod of containerID if the runtime has named
// it; otherwise it queues a lookup and returns false at once.
func (r *Runtime) Pod(containerID string) (namespace, name string, ok bool) {
	if containerID == "" {
		return "", "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.known[containerID]; ok {
		return p.Namespace, p.Name, true
	}
	if t, ok := r.unknown[containerID]; ok && time.Now().Before(t) || r.queued[containerID] {
		return "", "", false
	}
	select {
	case r.queue <- containerID:
		r.queued[containerID] = true
	default:
		r.dropped.Inc()
	}
	return "", "", false
}

// Run looks up queued containers until ctx ends.
func (r *Runtime) Run(ctx context.Context) error {
	defer r.client.CloseIdleConnections()
	for {
		var id string
		select {
		case <-ctx.Done():
			return nil
		case id = <-r.queue:
		}
		p, err := r.inspect(ctx, id)
		if ctx.Err() != nil {
			return nil
		}
		r.mu.Lock()
		delete(r.queued, id)
		switch {
		case err != nil || p.Name == "":
			if len(r.unknown) >= MaxContainers {
				clear(r.unknown)
			}
			r.unknown[id] = time.Now().Add(unknownFor)
		default:
			if len(r.known) >= MaxContainers {
				clear(r.known) // containers come and go; start over
			}
			r.known[id] = p
		}
		r.known2.Set(int64(len(r.known)))
		r.mu.Unlock()
		if err != nil {
			r.errs.Inc()
			r.log.Warn("inspecting container", "id", id, "err", err)
		}
	}
}

// inspect asks the runtime for a container's pod labels; a container it
// does not know, or one without the labels, is the zero Pod.
func (r *Runtime) inspect(ctx context.Context, id string) (Pod, error) {
	path := "/containers/" + id
	if r.kind == RuntimeDocker {
		path += "/json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://runtime"+path, nil)
	if err != nil {
		return Pod{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return Pod{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Pod{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return Pod{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return decodeRuntime(r.kind, io.LimitReader(resp.Body, maxObject))
}

// decodeRuntime reads the pod labels from an inspect answer.
func decodeRuntime(kind string, body io.Reader) (Pod, error) {
	var labels map[string]string
	switch kind {
	case RuntimeDocker:
		var v struct {
			Config struct {
				Labels map[string]string `json:"Labels"`
			} `json:"Config"`
		}
		if err := json.NewDecoder(body).Decode(&v); err != nil {
			return Pod{}, fmt.Errorf("docker inspect: %w", err)
		}
		labels = v.Config.Labels
	case RuntimeCRIO:
		var v struct {
			Labels map[string]string `json:"labels"`
		}
		if err := json.NewDecoder(body).Decode(&v); err != nil {
			return Pod{}, fmt.Errorf("crio inspect: %w", err)
		}
		labels = v.Labels
	default:
		return Pod{}, errors.New("unknown runtime " + kind)
	}
	return Pod{Namespace: labels[labelPodNamespace], Name: labels[labelPodName]}, nil
}
