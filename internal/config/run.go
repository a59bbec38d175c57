package config

import (
	"cmp"
	"log/slog"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Bounds of the run settings.
const (
	// MaxNode is the longest node name, in bytes.
	MaxNode = 255
	// MinRingBytes is the smallest BPF ring buffer (one page).
	MinRingBytes = 4096
)

// run checks the run settings. Their paths are "run.<field>"; a reason
// may name another field by its path ("and run.exit ..."), which the
// command line turns into a flag name.
func (ck *checker) run(r Run) {
	if !utf8.ValidString(r.Node) || len(r.Node) > MaxNode {
		ck.add("run.node", "must be valid UTF-8 of at most %d bytes", MaxNode)
	}
	if r.LogLevel != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(r.LogLevel)); err != nil {
			ck.add("run.log_level", "%q: want debug, info, warn or error", r.LogLevel)
		}
	}
	if n := r.RingBytes; n != 0 && (n < MinRingBytes || n&(n-1) != 0) {
		ck.add("run.ring_bytes", "must be a power of two >= %d (e.g. 4MiB, 64MiB), got %d bytes", MinRingBytes, n)
	}
	if r.Speed < 0 {
		ck.add("run.speed", "must be >= 0, got %v", r.Speed)
	}
	if r.Loop && r.Exit {
		ck.add("run.loop", "and run.exit contradict each other")
	}
	ck.pods(r)
	if r.PCAPNGRotateBytes < 0 {
		ck.add("run.pcapng_rotate_bytes", "must be >= 0, got %d", r.PCAPNGRotateBytes)
	}
	ck.server(r.Server)
}

// PodsInCluster is the run.pods value for the service account of the pod
// tlstap runs in (kube.InCluster).
const PodsInCluster = "in-cluster"

// pods checks the pod name settings.
func (ck *checker) pods(r Run) {
	if r.Pods == "" {
		for _, f := range []struct{ path, v string }{{"run.pods_token_file", r.PodsTokenFile}, {"run.pods_ca_file", r.PodsCAFile}} {
			if f.v != "" {
				ck.add(f.path, "must go with run.pods")
			}
		}
		return
	}
	if kind, socket, ok := strings.Cut(r.Pods, ":"); ok && (kind == "docker" || kind == "crio") && !strings.HasPrefix(socket, "//") {
		// A container runtime's socket: its labels name the pod.
		if !strings.HasPrefix(socket, "/") {
			ck.add("run.pods", "%q: want an absolute socket path after %s:", r.Pods, kind)
		}
		for _, f := range []struct{ path, v string }{{"run.pods_token_file", r.PodsTokenFile}, {"run.pods_ca_file", r.PodsCAFile}} {
			if f.v != "" {
				ck.add(f.path, "must go with a Kubernetes API in run.pods, not a runtime socket")
			}
		}
		return
	}
	if r.Pods != PodsInCluster {
		u, err := url.Parse(r.Pods)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			ck.add("run.pods", "%q: want %s, the API server's https://HOST[:PORT] (no user or query), docker:SOCKET or crio:SOCKET", r.Pods, PodsInCluster)
		}
	}
	switch node := cmp.Or(r.PodsNode, r.Node); {
	case node == "":
		ck.add("run.pods_node", "must be set to list the node's pods (run.node is empty)")
	case !utf8.ValidString(node) || len(node) > MaxNode || strings.ContainsAny(node, ",=!& \t\r\n"):
		ck.add("run.pods_node", "%q is not a Kubernetes node name", node)
	}
}

// Level returns the run's log level; an invalid one (Validate reports
// it) is info.
func (r Run) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(r.LogLevel))
	return l
}
