// Package kube names the pod of a container: it lists and watches the
// pods of one node through the Kubernetes API (plain net/http and
// encoding/json, no client-go) and maps every container id in their
// statuses (containerd://ID, cri-o://ID, docker://ID) to the pod's
// namespace and name.
//
// The event path never waits for the API: Lookup reads a cache that the
// watch keeps up to date, so an event of a container the cache does not
// know yet (a pod started a moment ago, or the API unreachable) goes out
// without its pod, and a later event of the same connection gets it. The
// cache is bounded (MaxContainers); list and watch failures are retried
// with internal/backoff and counted in tlstap_pods_api_errors_total.
//
// Runtime is the other source: the labels the kubelet puts on every
// container (io.kubernetes.pod.name, .namespace), read from docker's or
// CRI-O's local HTTP socket, one container at a time, off the event path.
package kube
