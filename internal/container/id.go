package container

import (
	"path"
	"strings"
)

// ID returns the container id that a cgroup path names, or "" if the path
// is not a container's. Both the cgroupfs and the systemd drivers'
// layouts are understood, also when nested (kind, docker-in-docker), in
// which case the innermost container wins:
//
//	/docker/<id>                                          docker, cgroupfs
//	/system.slice/docker-<id>.scope                       docker, systemd
//	/kubepods/burstable/pod<uid>/<id>                     containerd/CRI-O, cgroupfs
//	/kubepods.slice/.../cri-containerd-<id>.scope         containerd, systemd
//	/kubepods.slice/.../crio-<id>.scope                   CRI-O, systemd
//	/machine.slice/libpod-<id>.scope[/container]          podman, root
//	/user.slice/.../libpod-<id>.scope                     podman, rootless
//	/system.slice/containerd.service/<ns>/<id>            containerd (ctr, nerdctl)
//
// An id is 64 lowercase hex digits, the only form these runtimes use, so
// an ordinary service or slice name is never mistaken for one.
func ID(cgroupPath string) string {
	parts := strings.Split(path.Clean("/"+cgroupPath), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if id := idOf(parts[i]); id != "" {
			return id
		}
	}
	return ""
}

// idOf extracts the id from one path element.
func idOf(elem string) string {
	name := strings.TrimSuffix(elem, ".scope")
	if j := strings.LastIndexAny(name, "-:"); j >= 0 && name != elem {
		// <runtime>-<id>.scope: docker, cri-containerd, crio, libpod.
		name = name[j+1:]
	} else if name != elem {
		return ""
	}
	if isID(name) {
		return name
	}
	return ""
}

func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
