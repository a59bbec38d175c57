package container

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
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
// for the cgroup mount; a miss right after a walk is not final.
func TestResolver(t *testing.T) {
	root := t.TempDir()
	r := NewResolver(root)
	r.minWalk = 0
	if _, ok := r.Path(1); ok {
		t.Fatal("found an id in an empty tree")
	}
	if _, final := r.Lookup(1); !final {
		t.Fatal("a miss with no walk since is not final")
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
	walks := r.walks
	if got, final := r.Lookup(cg); got != id1 || !final || r.walks != walks {
		t.Fatalf("cached Lookup = %q, %v, %d walks (want none)", got, final, r.walks-walks)
	}

	// Rate limit: within minWalk a new id is not walked for, and the
	// answer says to ask again.
	r.minWalk = time.Hour
	dir2 := filepath.Join(root, "kubepods", "pod1", id2)
	if err := os.MkdirAll(dir2, 0o755); err != nil {
		t.Fatal(err)
	}
	cg2, _ := Of(dir2)
	if got, final := r.Lookup(cg2); got != "" || final {
		t.Fatalf("Lookup within minWalk = %q, %v; want \"\", not final", got, final)
	}
	r.minWalk = 0
	if got, final := r.Lookup(cg2); got != id2 || !final {
		t.Fatalf("Lookup after minWalk = %q, %v", got, final)
	}
}

// TestResolverBounds: misses are remembered up to maxMisses, then forgotten
// together; the cache never grows past its bound.
func TestResolverBounds(t *testing.T) {
	r := NewResolver(t.TempDir())
	r.minWalk = 0
	for id := uint64(1); id <= maxMisses+10; id++ {
		r.Lookup(1<<40 + id)
	}
	if len(r.misses) > maxMisses {
		t.Fatalf("%d misses remembered, bound %d", len(r.misses), maxMisses)
	}
}

// TestFindRoot: on this host the cgroup v2 hierarchy is found and holds
// this process's cgroup.
func TestFindRoot(t *testing.T) {
	root, err := FindRoot()
	if err != nil {
		t.Fatal("no cgroup v2 hierarchy on this host:", err)
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Fatalf("%s is not a cgroup v2 root: %v", root, err)
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

// TestResolverHandles: on this host's cgroup v2 hierarchy a cgroup made
// after the resolver is found by its id with no walk, and once removed is
// known to be gone, again with no walk.
func TestResolverHandles(t *testing.T) {
	if os.Geteuid() != 0 { // testenv.RequireRoot, which imports this package
		t.Skip("creating a cgroup needs root; run the tests as root to run it")
	}
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(root)
	if !r.handles {
		t.Fatalf("%s: cgroups do not open by id", root)
	}
	name := fmt.Sprintf("tlstap-resolver-%d", os.Getpid())
	dir := filepath.Join(root, name, "docker-"+id1+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	removed := false
	remove := func() {
		if !removed {
			removed = true
			os.Remove(dir)
			os.Remove(filepath.Join(root, name))
		}
	}
	defer remove()
	cg, err := Of(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r.Path(cg); !ok || p != "/"+name+"/docker-"+id1+".scope" {
		t.Fatalf("Path = %q, %v", p, ok)
	}
	if got, final := r.Lookup(cg); got != id1 || !final {
		t.Fatalf("Lookup = %q, %v", got, final)
	}
	remove()
	r2 := NewResolver(root)
	if got, final := r2.Lookup(cg); got != "" || !final {
		t.Fatalf("Lookup of a removed cgroup = %q, %v; want \"\", final", got, final)
	}
	if r.walks != 0 || r2.walks != 0 {
		t.Fatalf("%d and %d walks, want none", r.walks, r2.walks)
	}
}

// BenchmarkResolveMiss: what a cache miss costs, by handle and by a walk
// of this host's hierarchy with 500 more cgroups made for it (a host
// running a few dozen containers has that many: systemd and the runtimes
// make several per container).
func BenchmarkResolveMiss(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("creating cgroups needs root")
	}
	root, err := FindRoot()
	if err != nil {
		b.Fatal(err)
	}
	parent := filepath.Join(root, fmt.Sprintf("tlstap-bench-%d", os.Getpid()))
	var dirs []string
	b.Cleanup(func() {
		for _, d := range slices.Backward(dirs) {
			os.Remove(d)
		}
	})
	for i := range 500 {
		d := filepath.Join(parent, fmt.Sprintf("s%d", i/25))
		if i%25 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				dirs = append(dirs, parent)
			}
			dirs = append(dirs, d)
		}
		d = filepath.Join(d, fmt.Sprintf("docker-%d.scope", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	id, err := Of(dirs[len(dirs)-1])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("handle", func(b *testing.B) {
		r := NewResolver(root)
		for b.Loop() {
			r.mu.Lock()
			_, ok, _ := r.byHandle(id)
			r.mu.Unlock()
			if !ok {
				b.Fatal("not found by handle")
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		r := NewResolver(root)
		for b.Loop() {
			r.mu.Lock()
			r.walk(r.walked)
			r.mu.Unlock()
		}
		b.ReportMetric(float64(len(r.paths)), "cgroups")
	})
}
