package redact

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/stats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "Abc-def_ghi+jkl/mno=pqr"

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
		n              uint64
	}{
		{"none", "GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", 0},
		{"header", "Authorization: Bearer " + token + "\r\n", "Authorization: Bearer " + strings.Repeat("*", len(token)) + "\r\n", 1},
		{"query escaped", "GET /ws?token=Abc-def_ghi%2Bjkl%2Fmno%3Dpqr HTTP/1.1", "GET /ws?token=" + strings.Repeat("*", 29) + " HTTP/1.1", 1},
		{"twice", token + token, strings.Repeat("*", 2*len(token)), 2},
		{"prefix only", token[:10], token[:10], 0},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stats.NewSet()
			s := New(st)
			s.Add(token)
			in := []byte(tt.in)
			got := s.Redact(in)
			if string(got) != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if string(in) != tt.in {
				t.Errorf("input modified: %q", in)
			}
			if n := st.Value(RedactedTotal); uint64(n) != tt.n {
				t.Errorf("counted %v, want %d", n, tt.n)
			}
		})
	}
}

func TestShortAndNil(t *testing.T) {
	s := New(nil)
	s.Add("short")
	if got := s.String("a short one"); got != "a short one" {
		t.Errorf("short secret masked: %q", got)
	}
	var nilS *Secrets
	nilS.Add(token)
	if got := nilS.String(token); got != token {
		t.Errorf("nil set masked %q", got)
	}
}

type sliceSource []capture.Chunk

func (s sliceSource) Run(ctx context.Context, out chan<- capture.Chunk) error {
	for _, c := range s {
		select {
		case out <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func TestSourceAndWriter(t *testing.T) {
	s := New(nil)
	s.Add(token)
	src := s.Source(sliceSource{
		{Kind: capture.Data, Data: []byte("a " + token)},
		{Kind: capture.Close},
	})
	out := make(chan capture.Chunk, 4)
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []capture.Chunk
	for c := range out {
		got = append(got, c)
	}
	if len(got) != 2 || bytes.Contains(got[0].Data, []byte(token)) || got[1].Kind != capture.Close {
		t.Errorf("chunks %+v", got)
	}

	var b bytes.Buffer
	w := s.Writer(&b)
	line := "level=INFO msg=x url=https://h/ws?token=" + token + "\n"
	if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if strings.Contains(b.String(), token) || b.Len() != len(line) {
		t.Errorf("writer passed %q", b.String())
	}
}

func FuzzRedact(f *testing.F) {
	f.Add([]byte("Bearer "+token), token)
	f.Add([]byte("xxxxxxxx"), "xxxxxxxx")
	f.Add([]byte("aaaaaaaaaaaaaaaa"), "aaaaaaaa")
	f.Fuzz(func(t *testing.T, data []byte, secret string) {
		s := New(nil)
		s.Add(secret)
		got := s.Redact(data)
		if len(got) != len(data) {
			t.Fatalf("length %d, want %d", len(got), len(data))
		}
		if len(secret) >= minSecret && !strings.Contains(secret, "*") && bytes.Contains(got, []byte(secret)) {
			t.Fatalf("secret %q left in %q", secret, got)
		}
	})
}
