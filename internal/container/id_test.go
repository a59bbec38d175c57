package container

import (
	"os"
	"path/filepath"
	"testing"
)

const (
	id1 = "3f1e2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef"
	id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// TestID maps cgroup paths in the shapes real hosts have (from
// /proc/PID/cgroup on docker, kind, k3s, OpenShift, podman hosts) to
// container ids.
func TestID(t *testing.T) {
	for _, tc := range []struct {
		name, path, want string
	}{
		{"docker cgroupfs", "/docker/" + id1, id1},
		{"docker systemd", "/system.slice/docker-" + id1 + ".scope", id1},
		{"containerd CRI systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f7c3a52_8e0b_4a0e_9c7d_1b2c3d4e5f60.slice/cri-containerd-" + id1 + ".scope", id1},
		{"containerd CRI cgroupfs", "/kubepods/besteffort/pod5f7c3a52-8e0b-4a0e-9c7d-1b2c3d4e5f60/" + id1, id1},
		{"CRI-O systemd", "/kubepods.slice/kubepods-pod5f7c3a52_8e0b_4a0e_9c7d_1b2c3d4e5f60.slice/crio-" + id1 + ".scope", id1},
		{"CRI-O conmon, attributed to its container", "/kubepods.slice/kubepods-pod5f7c3a52_8e0b.slice/crio-conmon-" + id1 + ".scope", id1},
		{"podman root", "/machine.slice/libpod-" + id1 + ".scope", id1},
		{"podman root, inner cgroup", "/machine.slice/libpod-" + id1 + ".scope/container", id1},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope", id1},
		{"containerd namespace", "/system.slice/containerd.service/default/" + id1, id1},
		{"k3s", "/kubepods/burstable/pod0b5e/" + id1, id1},
		{"kind: node container holding a pod", "/system.slice/docker-" + id2 + ".scope/kubelet.slice/kubelet-kubepods.slice/kubepods-besteffort.slice/cri-containerd-" + id1 + ".scope", id1},
		{"docker in docker", "/docker/" + id2 + "/docker/" + id1, id1},
		{"relative", "docker/" + id1, id1},
		{"systemd service", "/system.slice/nginx.service", ""},
		{"user session", "/user.slice/user-1000.slice/session-3.scope", ""},
		{"root", "/", ""},
		{"empty", "", ""},
		{"pod slice only", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f7c3a52_8e0b.slice", ""},
		{"id too short", "/docker/" + id1[:63], ""},
		{"upper case hex", "/docker/3F1E2D4C5B6A79880A1B2C3D4E5F60718293A4B5C6D7E8F90123456789ABCDEF", ""},
		{"scope without runtime", "/system.slice/" + id1 + ".scope", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ID(tc.path); got != tc.want {
				t.Errorf("ID(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

// TestResolver finds directories created after the first walk and maps
// their inode numbers to paths, on an ordinary directory tree standing in
// for the cgroup mount.
func TestResolver(t *testing.T) {
	root := t.TempDir()
	r := NewResolver(root)
	if _, ok := r.Path(1); ok {
		t.Fatal("found an id in an empty tree")
	}
	dir := filepath.Join(root, "system.slice", "docker-"+id1+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cg, err := Of(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r.Path(cg); !ok || p != "/system.slice/docker-"+id1+".scope" {
		t.Fatalf("Path = %q, %v", p, ok)
	}
	if got := r.Container(cg); got != id1 {
		t.Fatalf("Container = %q", got)
	}
}

func FuzzID(f *testing.F) {
	f.Add("/system.slice/docker-" + id1 + ".scope")
	f.Add("/kubepods/burstable/pod1/" + id1)
	f.Fuzz(func(t *testing.T, p string) {
		if id := ID(p); id != "" && !isID(id) {
			t.Fatalf("ID(%q) = %q, not an id", p, id)
		}
	})
}
