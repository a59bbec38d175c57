package kube

import (
	"bytes"
	"testing"
)

// FuzzStream: any bytes on a watch stream end it with an error or EOF,
// never a panic, and leave the cache within its bound.
func FuzzStream(f *testing.F) {
	f.Add([]byte(`{"type":"ADDED","object":{"metadata":{"name":"p","namespace":"n","uid":"u","resourceVersion":"5"},"status":{"containerStatuses":[{"containerID":"containerd://abc"}]}}}`))
	f.Add([]byte(`{"type":"DELETED","object":{"metadata":{"uid":"u"}}}{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}`))
	f.Add([]byte(`{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}`))
	f.Add([]byte(`{"type":"ADDED","object":[]}`))
	f.Add([]byte(`{"type":"X"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := New(Options{API: "https://127.0.0.1:1", Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		w.stream(bytes.NewReader(b), func() {})
		if len(w.byID) > MaxContainers {
			t.Fatalf("%d containers", len(w.byID))
		}
		if _, ok := w.byID[""]; ok {
			t.Fatal("an empty container id is mapped")
		}
	})
}

// FuzzDecodeRuntime: any inspect answer decodes to a pod or an error.
func FuzzDecodeRuntime(f *testing.F) {
	f.Add([]byte(`{"Config":{"Labels":{"io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"n"}}}`))
	f.Add([]byte(`{"labels":{"io.kubernetes.pod.name":"p"}}`))
	f.Add([]byte(`{"Config":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, kind := range []string{RuntimeDocker, RuntimeCRIO, "x"} {
			decodeRuntime(kind, bytes.NewReader(b))
		}
	})
}
