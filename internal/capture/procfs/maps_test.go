package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseMaps(t *testing.T) {
	const in = `55d0c6a00000-55d0c6a2c000 r--p 00000000 fd:01 1053245                    /usr/sbin/nginx
7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 
7f1c2b400000-7f1c2b45c000 r--p 00000000 fd:01 326786                     /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b600000-7f1c2b601000 r-xp 00000000 08:02 42                         /tmp/a dir/with spaces.so
7f1c2b700000-7f1c2b701000 r-xp 00000000 08:02 43                         /tmp/libssl.so.3 (deleted)
7ffd3e5e1000-7ffd3e602000 rw-p 00000000 00:00 0                          [stack]
7ffd3e7f0000-7ffd3e7f2000 r-xp 00000000 00:00 0                          [vdso]
7f1c2b800000-7f1c2b801000 r-xp 00000000 00:05 1234                       /memfd:jit (deleted)
short line
7f1c2b900000-7f1c2b901000 r-xp 00000000 08:02 notanumber                 /bad/inode
`
	var got []string
	if err := ParseMaps(strings.NewReader(in), func(m Mapping) {
		got = append(got, fmt.Sprintf("%s %d %q %v", m.Dev, m.Inode, m.Path, m.Deleted))
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`fd:01 1053245 "/usr/sbin/nginx" false`,
		`fd:01 326786 "/usr/lib/x86_64-linux-gnu/libssl.so.3" false`,
		`08:02 42 "/tmp/a dir/with spaces.so" false`,
		`08:02 43 "/tmp/libssl.so.3" true`,
		`00:05 1234 "/memfd:jit" true`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The test binary itself maps libc (or, statically linked, nothing); its
// own executable is always mapped.
func TestScanMappedFindsSelf(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ScanMapped("/proc", func(p string) bool { return p == exe })
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	var mine []MappedFile
	for _, f := range files {
		if f.PID == self {
			mine = append(mine, f)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("found the test binary mapped %d times in pid %d, want once: %+v", len(mine), self, mine)
	}
	want := filepath.Join("/proc", strconv.Itoa(self), "root", exe)
	if mine[0].HostPath != want {
		t.Errorf("HostPath %s, want %s", mine[0].HostPath, want)
	}
	if _, err := os.Stat(mine[0].HostPath); err != nil {
		t.Errorf("HostPath does not open: %v", err)
	}
}

func TestScanMappedFakeRoot(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	line := "7f00-7f01 r-xp 00000000 fd:01 %d %s\n"
	write("12/maps", fmt.Sprintf(line, 1, "/lib/libssl.so.3")+fmt.Sprintf(line, 1, "/lib/libssl.so.3")+fmt.Sprintf(line, 2, "/lib/libc.so.6"))
	write("34/maps", fmt.Sprintf(line, 3, "/opt/libssl.so.1.1"))
	write("self/maps", fmt.Sprintf(line, 4, "/lib/libssl.so.3")) // not a pid
	write("56/status", "no maps here")

	files, err := ScanMapped(root, func(p string) bool { return strings.Contains(p, "libssl") })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, fmt.Sprintf("%d %s %s", f.PID, f.Path, strings.TrimPrefix(f.HostPath, root)))
	}
	slices.Sort(got)
	want := []string{"12 /lib/libssl.so.3 /12/root/lib/libssl.so.3", "34 /opt/libssl.so.1.1 /34/root/opt/libssl.so.1.1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := ScanMapped(filepath.Join(root, "missing"), func(string) bool { return true }); err == nil {
		t.Error("scanning a missing root succeeded")
	}
}

func FuzzParseMaps(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		err := ParseMaps(strings.NewReader(string(in)), func(m Mapping) {
			if !strings.HasPrefix(m.Path, "/") || m.Inode == 0 {
				t.Fatalf("accepted %+v from %q", m, in)
			}
		})
		if err != nil && len(in) < 1<<20 {
			t.Fatalf("error on a %d-byte input: %v", len(in), err)
		}
	})
}
