package recording_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/tlstap/tlstap/internal/demo"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/recording"
)

// TestRewriteIsByteIdentical reads the demo recording, made by an earlier
// build, and writes its chunks again: everything after the header (which
// holds the time of writing) must come out byte for byte the same, so the
// file format does not drift with the code that frames it.
func TestRewriteIsByteIdentical(t *testing.T) {
	rc, err := demo.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	orig, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recording.NewReader(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	origBody := orig[r.Offset():]

	var out bytes.Buffer
	w, err := recording.NewWriter(&out, r.Producer())
	if err != nil {
		t.Fatal(err)
	}
	hdrEnd := w.Size()
	n := 0
	for {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&c); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the demo recording has no chunks")
	}
	if !bytes.HasPrefix(out.Bytes(), []byte(recording.Magic)) {
		t.Fatalf("rewritten file starts %q, want the magic %q", out.Bytes()[:len(recording.Magic)], recording.Magic)
	}
	if got := out.Bytes()[hdrEnd:]; !bytes.Equal(got, origBody) {
		t.Errorf("%d chunks rewritten differ from the original (%d vs %d bytes):\n%s", n, len(got), len(origBody), golden.FirstDiff(origBody, got))
	}
	if int64(out.Len()) != w.Size() {
		t.Errorf("Size() = %d, wrote %d bytes", w.Size(), out.Len())
	}
}
