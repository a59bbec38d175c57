// Package container attributes processes to containers from the kernel's
// point of view: the cgroup v2 id of a thread (the inode number of its
// cgroup directory, what bpf_get_current_cgroup_id returns) is resolved to
// the cgroup's path under the cgroup2 mount, and the path to a container
// id by the naming conventions of docker, containerd (CRI), CRI-O, podman
// and systemd.
//
// Nothing here asks a container runtime: the kernel's view is the only one
// a process cannot lie about, and it needs no socket access. Names of pods
// and namespaces, which only the runtime or the Kubernetes API know, are
// package kube's.
package container
