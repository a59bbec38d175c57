package sink

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/output"
)

// readDir decodes every file of dir in rotation order (rotated files by
// name, the live file last) and checks each one ends on a frame boundary.
func readDir(t *testing.T, dir, live string) (seqs []uint64, files []fileInfo) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "events-*.pb"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	names = append(names, filepath.Join(dir, live))
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(f)
		fi := fileInfo{}
		for {
			m, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s is not complete on its own: %v", filepath.Base(name), err)
			}
			seqs = append(seqs, m.GetEventPayload().GetSeq())
			if fi.first == 0 {
				fi.first = r.Offset
			}
		}
		fi.size = r.Offset
		files = append(files, fi)
		f.Close()
	}
	return seqs, files
}

type fileInfo struct {
	size  int64 // bytes
	first int64 // size of the first frame
}

func TestFileSinkRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.pb")
	// A leftover from an earlier run, cut mid-record, must be moved
	// aside, not appended to.
	if err := os.WriteFile(path, []byte{0x7f, 1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	b, st := newBroker()
	opts := fastOpts(Protobuf)
	opts.RotateBytes = 1000 // a few request frames per file
	s, err := New(path, opts, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	const n = 25
	for seq := uint64(1); seq <= n; seq++ {
		b.Publish(request(seq))
	}
	waitFor(t, "all entries written", func() bool { return st.Value("tlstap_sink_sent_total", "sink", "file") == n })
	stop()

	leftover, err := filepath.Glob(filepath.Join(dir, "events-*-0001.pb"))
	if err != nil || len(leftover) != 1 {
		t.Fatalf("leftover file not moved aside: %v %v", leftover, err)
	}
	if b, _ := os.ReadFile(leftover[0]); len(b) != 3 {
		t.Fatalf("leftover file changed: %x", b)
	}
	os.Remove(leftover[0])

	seqs, files := readDir(t, dir, "events.pb")
	if len(files) < 3 {
		t.Fatalf("%d files, want several", len(files))
	}
	// Each file stays within the limit and was closed only because the
	// next entry would not have fitted.
	for i, f := range files {
		if f.size > opts.RotateBytes {
			t.Errorf("file %d holds %d bytes, limit %d", i, f.size, opts.RotateBytes)
		}
		if i+1 < len(files) && f.size+files[i+1].first <= opts.RotateBytes {
			t.Errorf("file %d rotated at %d bytes though the next entry (%d bytes) fitted", i, f.size, files[i+1].first)
		}
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("seqs across files = %v, want 1..%d in order", seqs, n)
		}
	}
	if len(seqs) != n {
		t.Fatalf("read %d entries, want %d", len(seqs), n)
	}
	if got := st.Value("tlstap_sink_file_rotations_total"); got != float64(len(files)-1) {
		t.Errorf("rotations = %v, want %d", got, len(files)-1)
	}
}

func TestFileSinkRotatesByAge(t *testing.T) {
	dir := t.TempDir()
	b, st := newBroker()
	opts := fastOpts(Protobuf)
	opts.RotateAge = 20 * time.Millisecond
	s, err := New("file://"+filepath.Join(dir, "events.pb"), opts, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	b.Publish(request(1))
	// With no further traffic the age alone must close the file.
	waitFor(t, "rotation by age", func() bool { return st.Value("tlstap_sink_file_rotations_total") >= 1 })
	b.Publish(request(2))
	waitFor(t, "second entry", func() bool { return st.Value("tlstap_sink_sent_total", "sink", "file") == 2 })
	stop()
	seqs, _ := readDir(t, dir, "events.pb")
	if !slices.Equal(seqs, []uint64{1, 2}) {
		t.Errorf("seqs = %v, want [1 2]", seqs)
	}
}

func TestFileSinkJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	b, st := newBroker()
	s, err := New(path, fastOpts(JSON), b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	for seq := uint64(1); seq <= 3; seq++ {
		b.Publish(request(seq))
	}
	waitFor(t, "3 entries", func() bool { return st.Value("tlstap_sink_sent_total", "sink", "file") == 3 })
	stop()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		var got output.JSONEvent
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if want := output.ToJSON(request(uint64(n)).GetEventPayload()); got != want {
			t.Errorf("line %d:\n got %+v\nwant %+v", n, got, want)
		}
	}
	if n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
}

// Entries still queued when the context ends are written before Run returns.
func TestFileSinkDrainsOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.pb")
	b, st := newBroker()
	s, err := New(path, fastOpts(Protobuf), b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 50; seq++ {
		b.Publish(request(seq)) // queued before Run starts
	}
	stop := run(t, s)
	stop()
	seqs, _ := readDir(t, filepath.Dir(path), "events.pb")
	if len(seqs) != 50 {
		t.Errorf("%d entries on disk after stop, want 50", len(seqs))
	}
}
