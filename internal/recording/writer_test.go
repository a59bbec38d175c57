package recording_test

import (
	"io"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/recording"
)

func TestWriterRefusesHugeRecord(t *testing.T) {
	w, err := recording.NewWriter(io.Discard, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&capture.Chunk{Data: make([]byte, recording.MaxRecord)}); err == nil {
		t.Error("a record over MaxRecord was written")
	}
}
