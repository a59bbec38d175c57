package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/stats"
)

// InCluster is the Options.API value that means the service account of
// the pod tlstap runs in: KUBERNETES_SERVICE_HOST and _PORT, and the
// token and CA in ServiceAccountDir.
const InCluster = "in-cluster"

// ServiceAccountDir is where Kubernetes mounts a pod's service account.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Bounds. A node runs at most a few hundred pods (110 by default), each
// with a handful of containers, so MaxContainers is never reached in
// practice; past it, new containers are not mapped and are counted.
const (
	MaxContainers = 1 << 14
	// maxObject bounds one pod object or one watch event's JSON.
	maxObject = 4 << 20
	// watchTimeout asks the API server to end a watch after this long,
	// so a connection silently lost is noticed and replaced.
	watchTimeout = 5 * time.Minute
	// idleTimeout ends a watch that sent nothing (not even a bookmark)
	// for this long.
	idleTimeout = watchTimeout + time.Minute
)

// Options select the API server and the node.
type Options struct {
	// API is InCluster or the API server's URL (https://HOST:PORT).
	API string
	// TokenFile holds the bearer token, read again for every request
	// (projected tokens rotate); "" means none, or the service
	// account's with InCluster.
	TokenFile string
	// CAFile holds the PEM CAs that sign the API server's certificate;
	// "" means the service account's with InCluster, the system's
	// otherwise.
	CAFile string
	// Node is the node whose pods are listed (spec.nodeName).
	Node string
	// Dial makes the connections (tlstap passes its self-excluding
	// dialer); nil is net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Stats receives the counters; Log the list and watch failures.
	Stats *stats.Set
	Log   *slog.Logger
	// Backoff bounds the retry delay (default 1 s up to 30 s); tests
	// shorten it.
	Backoff backoff.Backoff
}

// Pod is where a container runs.
type Pod struct {
	Namespace, Name string
}

// Watcher keeps the container → pod map of one node. Lookup is safe for
// concurrent use; Run keeps it current.
type Watcher struct {
	base      *url.URL
	tokenFile string
	node      string
	client    *http.Client
	log       *slog.Logger
	bo        backoff.Backoff

	mu    sync.RWMutex
	byID  map[string]Pod      // container id -> pod
	byUID map[string][]string // pod uid -> its container ids

	errs, full, lists, watches *stats.Counter
	known                      *stats.Gauge
}

// New checks o and returns a Watcher that knows nothing until Run has
// listed the node's pods.
func New(o Options) (*Watcher, error) {
	if o.Node == "" {
		return nil, errors.New("kube: no node name to list the pods of")
	}
	api, tokenFile, caFile := o.API, o.TokenFile, o.CAFile
	if api == InCluster {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("kube: in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod?)")
		}
		api = "https://" + net.JoinHostPort(host, port)
		if tokenFile == "" {
			tokenFile = ServiceAccountDir + "/token"
		}
		if caFile == "" {
			caFile = ServiceAccountDir + "/ca.crt"
		}
	}
	base, err := ParseAPI(api)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kube: CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kube: CA: no PEM certificate in %s", caFile)
		}
	}
	if tokenFile != "" {
		if _, err := readToken(tokenFile); err != nil {
			return nil, err
		}
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	st, log := o.Stats, o.Log
	if st == nil {
		st = stats.NewSet()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bo := o.Backoff
	if bo.Min == 0 && bo.Max == 0 {
		bo = backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	}
	return &Watcher{
		base:      base,
		tokenFile: tokenFile,
		node:      o.Node,
		client: &http.Client{Transport: &http.Transport{
			DialContext:           dial,
			TLSClientConfig:       tc,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConns:          2,
			ForceAttemptHTTP2:     true,
		}},
		log:     log.With("component", "pods", "api", base.String(), "node", o.Node),
		bo:      bo,
		byID:    map[string]Pod{},
		byUID:   map[string][]string{},
		errs:    st.Counter("tlstap_pods_api_errors_total", "Kubernetes API list and watch failures (each is retried)."),
		full:    st.Counter("tlstap_pods_cache_full_total", "Containers not mapped to their pod because the cache was full."),
		lists:   st.Counter("tlstap_pods_lists_total", "Full lists of the node's pods from the Kubernetes API."),
		watches: st.Counter("tlstap_pods_watches_total", "Watches of the node's pods started."),
		known:   st.Gauge("tlstap_pods_containers", "Containers currently mapped to a pod."),
	}, nil
}

// ParseAPI checks an API server URL: http or https, a host, no query.
func ParseAPI(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("kube: API URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("kube: API URL %q: want %s or https://HOST[:PORT][/PATH] without user or query", s, InCluster)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("kube: token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, "\r\n") {
		return "", fmt.Errorf("kube: token: %s holds no single-line token", path)
	}
	return t, nil
}

// Lookup returns the pod of a container id (64 hex digits, as
// internal/container derives it). It never blocks on the API.
func (w *Watcher) Lookup(containerID string) (Pod, bool) {
	if w == nil || containerID == "" {
		return Pod{}, false
	}
	w.mu.RLock()
	p, ok := w.byID[containerID]
	w.mu.RUnlock()
	return p, ok
}

// Pod is Lookup for the pipeline (pipeline.Pods).
func (w *Watcher) Pod(containerID string) (namespace, name string, ok bool) {
	p, ok := w.Lookup(containerID)
	return p.Namespace, p.Name, ok
}

// Run lists and watches until ctx ends; it returns nil then. Failures
// are logged, counted and retried with backoff; a watch that ends or
// breaks resumes at the last resource version seen, and one the server
// says is too old (410 Gone) starts over with a list.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.client.CloseIdleConnections()
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			v, err := w.list(ctx)
			if err != nil {
				if !w.fail(ctx, "listing pods", err) {
					return nil
				}
				continue
			}
			rv = v
		}
		start := time.Now()
		v, progressed, err := w.watch(ctx, rv)
		if err == nil && !progressed && time.Since(start) < time.Second {
			// A server that ends every watch at once would have us spin.
			err = errors.New("watch ended at once without an event")
		}
		if v != "" {
			rv = v
		}
		if progressed {
			w.bo.Reset()
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errGone):
			w.log.Info("watch expired; listing again", "resource_version", rv)
			rv = ""
		case err != nil:
			if !w.fail(ctx, "watching pods", err) {
				return nil
			}
		}
	}
	return nil
}

// fail counts and logs err and waits the next backoff delay; false
// means ctx ended.
func (w *Watcher) fail(ctx context.Context, what string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	w.errs.Inc()
	d := w.bo.Next()
	w.log.Warn(what, "err", err, "retry_in", d.Round(time.Millisecond))
	return backoff.Sleep(ctx, d)
}

var errGone = errors.New("resource version too old (410 Gone)")

// podsURL is the node's pods query with extra parameters.
func (w *Watcher) podsURL(extra url.Values) string {
	q := url.Values{"fieldSelector": {"spec.nodeName=" + w.node}}
	for k, v := range extra {
		q[k] = v
	}
	u := *w.base
	u.Path += "/api/v1/pods"
	u.RawQuery = q.Encode()
	return u.String()
}

func (w *Watcher) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tlstap")
	if w.tokenFile != "" {
		tok, err := readToken(w.tokenFile)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode == http.StatusGone {
			return nil, errGone
		}
		var s status
		if json.Unmarshal(msg, &s) == nil && s.Message != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, s.Message)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// list replaces the cache with the node's pods (following continue
// tokens) and returns the list's resource version.
func (w *Watcher) list(ctx context.Context) (string, error) {
	var pods []pod
	cont, rv := "", ""
	for {
		q := url.Values{"limit": {"500"}}
		if cont != "" {
			q.Set("continue", cont)
		}
		resp, err := w.get(ctx, w.podsURL(q))
		if err != nil {
			return "", err
		}
		var l podList
		err = json.NewDecoder(io.LimitReader(resp.Body, 64*maxObject)).Decode(&l)
		resp.Body.Close()
		if err != nil {
			return "", fmt.Errorf("pod list: %w", err)
		}
		pods = append(pods, l.Items...)
		rv, cont = l.Metadata.ResourceVersion, l.Metadata.Continue
		if cont == "" {
			break
		}
	}
	if rv == "" {
		return "", errors.New("pod list without a resourceVersion")
	}
	w.mu.Lock()
	clear(w.byID)
	clear(w.byUID)
	for i := range pods {
		w.put(&pods[i])
	}
	w.known.Set(int64(len(w.byID)))
	w.mu.Unlock()
	w.lists.Inc()
	w.bo.Reset()
	return rv, nil
}

// watch applies the events of one watch from rv until it ends; it
// returns the last resource version seen and whether any event came.
func (w *Watcher) watch(ctx context.Context, rv string) (string, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := w.get(ctx, w.podsURL(url.Values{
		"watch":               {"true"},
		"resourceVersion":     {rv},
		"allowWatchBookmarks": {"true"},
		"timeoutSeconds":      {fmt.Sprint(int(watchTimeout / time.Second))},
	}))
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	w.watches.Inc()
	// A watch that goes quiet past the server's own timeout is a lost
	// connection: end it.
	idle := time.AfterFunc(idleTimeout, cancel)
	defer idle.Stop()
	return w.stream(resp.Body, func() { idle.Reset(idleTimeout) })
}

// stream applies the watch events read from body until it ends or fails,
// calling alive after each; it returns the last resource version seen
// and whether any event came.
func (w *Watcher) stream(r io.Reader, alive func()) (string, bool, error) {
	body := &limited{r: r}
	dec := json.NewDecoder(body)
	last, progressed := "", false
	for {
		var ev watchEvent
		body.n = 0
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return last, progressed, nil // the server ended it
			}
			return last, progressed, fmt.Errorf("watch stream: %w", err)
		}
		alive()
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED", "BOOKMARK":
			var p pod
			if err := json.Unmarshal(ev.Object, &p); err != nil {
				return last, progressed, fmt.Errorf("watch %s event: %w", ev.Type, err)
			}
			if v := p.Metadata.ResourceVersion; v != "" {
				last = v
			}
			progressed = true
			if ev.Type == "BOOKMARK" {
				continue
			}
			w.mu.Lock()
			w.remove(podKey(&p))
			if ev.Type != "DELETED" {
				w.put(&p)
			}
			w.known.Set(int64(len(w.byID)))
			w.mu.Unlock()
		case "ERROR":
			var s status
			_ = json.Unmarshal(ev.Object, &s)
			if s.Code == http.StatusGone {
				return last, progressed, errGone
			}
			return last, progressed, fmt.Errorf("watch error %d %s: %s", s.Code, s.Reason, s.Message)
		default:
			return last, progressed, fmt.Errorf("watch event of unknown type %q", ev.Type)
		}
	}
}

// limited fails a read past maxObject bytes without a complete value in
// between; json.Decoder buffers one value at a time, so this bounds the
// memory one malformed or hostile event can take.
type limited struct {
	r io.Reader
	n int
}

var errTooLong = fmt.Errorf("watch event longer than %d bytes", maxObject)

func (l *limited) Read(p []byte) (int, error) {
	if l.n > maxObject {
		return 0, errTooLong
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

// put maps p's containers; w.mu held.
func (w *Watcher) put(p *pod) {
	uid := podKey(p)
	to := Pod{Namespace: p.Metadata.Namespace, Name: p.Metadata.Name}
	var ids []string
	for _, list := range [][]containerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, c := range list {
			id := ContainerID(c.ContainerID)
			if id == "" {
				continue
			}
			if _, ok := w.byID[id]; !ok && len(w.byID) >= MaxContainers {
				w.full.Inc()
				continue
			}
			w.byID[id] = to
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		w.byUID[uid] = ids
	}
}

// podKey identifies a pod: its uid, or namespace/name without one.
func podKey(p *pod) string {
	if p.Metadata.UID != "" {
		return p.Metadata.UID
	}
	return p.Metadata.Namespace + "/" + p.Metadata.Name
}

// remove forgets the containers of the pod with uid; w.mu held.
func (w *Watcher) remove(uid string) {
	for _, id := range w.byUID[uid] {
		delete(w.byID, id)
	}
	delete(w.byUID, uid)
}

// ContainerID returns the id in a container status's containerID
// ("containerd://ID", "cri-o://ID", "docker://ID"), lower-cased, or ""
// for an empty or malformed one.
func ContainerID(s string) string {
	_, id, ok := strings.Cut(s, "://")
	if !ok || id == "" || strings.ContainsAny(id, "/: ") {
		return ""
	}
	return strings.ToLower(id)
}

// The JSON shapes, as much of them as is read.
type (
	objectMeta struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		UID             string `json:"uid"`
		ResourceVersion string `json:"resourceVersion"`
	}
	containerStatus struct {
		ContainerID string `json:"containerID"`
	}
	pod struct {
		Metadata objectMeta `json:"metadata"`
		Status   struct {
			ContainerStatuses          []containerStatus `json:"containerStatuses"`
			InitContainerStatuses      []containerStatus `json:"initContainerStatuses"`
			EphemeralContainerStatuses []containerStatus `json:"ephemeralContainerStatuses"`
		} `json:"status"`
	}
	podList struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
			Continue        string `json:"continue"`
		} `json:"metadata"`
		Items []pod `json:"items"`
	}
	watchEvent struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	status struct {
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
)
