package http1

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/golden"
)

// feedPlan says where each direction's bytes are cut into Feed calls and
// which timestamp each piece carries.
type feedPlan struct {
	cuts [2][]int
	ts   [2]func(off int) int64
	// flushTS is the timestamp of the final Flush(Close).
	flushTS int64
}

// result is what decoding a recording produced.
type result struct {
	msgs     [2][]*decoder.Message
	detached [2][]byte
}

// decodeRecording feeds the requests, then the responses (as a server sees
// them: a response never precedes its request), detaches both directions
// after a protocol switch, and closes.
func decodeRecording(rec recording, plan feedPlan, lim decoder.Limits) result {
	var res result
	c := NewConn(lim)
	decs := [2]decoder.Decoder{c.Requests(), c.Responses()}
	switched := false
	for dir, data := range [2][]byte{rec.req, rec.resp} {
		emit := func(m *decoder.Message) {
			res.msgs[dir] = append(res.msgs[dir], m)
			if m.Upgrade != nil {
				switched = true
			}
		}
		prev := 0
		for _, cut := range append(plan.cuts[dir], len(data)) {
			if cut > prev {
				decs[dir].Feed(plan.ts[dir](prev), data[prev:cut], emit)
			}
			prev = cut
		}
	}
	if switched {
		res.detached = [2][]byte{c.Detach(0), c.Detach(1)}
	}
	for dir := range 2 {
		decs[dir].Flush(plan.flushTS, decoder.Close, func(m *decoder.Message) {
			res.msgs[dir] = append(res.msgs[dir], m)
		})
	}
	return res
}

// byteFeed feeds one byte at a time, each stamped with its offset.
func byteFeed(rec recording) feedPlan {
	var p feedPlan
	for dir, data := range [2][]byte{rec.req, rec.resp} {
		for i := 1; i < len(data); i++ {
			p.cuts[dir] = append(p.cuts[dir], i)
		}
		p.ts[dir] = func(off int) int64 { return int64(off) }
	}
	p.flushTS = int64(max(len(rec.req), len(rec.resp)))
	return p
}

// wholeFeed feeds each direction in one call at time 0.
func wholeFeed(rec recording) feedPlan {
	zero := func(int) int64 { return 0 }
	return feedPlan{ts: [2]func(int) int64{zero, zero}, flushTS: 2}
}

// splitFeed cuts direction dir in two at k: bytes before k at time 0,
// the rest at time 1.
func splitFeed(dir, k int) feedPlan {
	p := feedPlan{flushTS: 2}
	p.cuts[dir] = []int{k}
	p.ts[dir] = func(off int) int64 {
		if off < k {
			return 0
		}
		return 1
	}
	p.ts[1-dir] = func(int) int64 { return 0 }
	return p
}

// expectTS maps the timestamps of a byte-fed result (offsets) to those a
// plan gives the same bytes.
func expectTS(golden result, flushByte int64, plan feedPlan) result {
	var out result
	out.detached = golden.detached
	for dir := range 2 {
		for _, m := range golden.msgs[dir] {
			c := *m
			conv := func(v int64) int64 {
				if v >= flushByte {
					return plan.flushTS
				}
				return plan.ts[dir](int(v))
			}
			c.Start, c.End = conv(m.Start), conv(m.End)
			out.msgs[dir] = append(out.msgs[dir], &c)
		}
	}
	return out
}

// TestGolden decodes the checked-in recordings byte by byte, compares
// every message with its testdata/NAME.golden, then checks that every way of cutting
// the input (whole, and in two at every offset; sampled for big
// recordings) yields the same messages.
func TestGolden(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := loadRecording(t, sc)
			bf := byteFeed(rec)
			whole := decodeRecording(rec, bf, decoder.Limits{})
			checkWant(t, sc, whole)
			golden.Check(t, filepath.Join("testdata", sc.name+".golden"), renderResult(whole))

			check := func(name string, plan feedPlan) {
				t.Helper()
				got := decodeRecording(rec, plan, decoder.Limits{})
				want := expectTS(whole, bf.flushTS, plan)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: decoded differently:\n%s\nwant:\n%s", name, renderResult(got), renderResult(want))
				}
			}
			check("whole", wholeFeed(rec))
			for dir, data := range [2][]byte{rec.req, rec.resp} {
				for _, k := range splitPoints(data, whole.msgs[dir]) {
					check(fmt.Sprintf("dir %d split at %d", dir, k), splitFeed(dir, k))
				}
			}
		})
	}
}

// splitPoints is every offset for small inputs; for big ones, offsets near
// message boundaries and a seeded sample of the rest.
func splitPoints(data []byte, msgs []*decoder.Message) []int {
	const small = 4096
	if len(data) <= small {
		pts := make([]int, 0, len(data))
		for k := 1; k < len(data); k++ {
			pts = append(pts, k)
		}
		return pts
	}
	set := map[int]bool{}
	for _, m := range msgs {
		for _, edge := range []int64{m.Start, m.End} {
			for d := int64(-64); d <= 64; d++ {
				if k := int(edge + d); k > 0 && k < len(data) {
					set[k] = true
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(data))))
	for range 256 {
		set[1+rng.IntN(len(data)-1)] = true
	}
	pts := make([]int, 0, len(set))
	for k := range set {
		pts = append(pts, k)
	}
	return pts
}

// recorded keeps -update's recordings so that every test in the run
// (goldens, fuzz seeds) uses the same bytes.
var recorded = map[string]recording{}

func loadRecording(t *testing.T, sc scenario) recording {
	t.Helper()
	base := filepath.Join("testdata", sc.name)
	if rec, ok := recorded[sc.name]; ok {
		return rec
	}
	if *golden.Update {
		rec := record(t, sc.drive)
		recorded[sc.name] = rec
		if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
			t.Fatal(err)
		}
		for ext, b := range map[string][]byte{".req": rec.req, ".resp": rec.resp} {
			if err := os.WriteFile(base+ext, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return rec
	}
	var rec recording
	var err error
	if rec.req, err = os.ReadFile(base + ".req"); err != nil {
		t.Fatal(err)
	}
	if rec.resp, err = os.ReadFile(base + ".resp"); err != nil {
		t.Fatal(err)
	}
	return rec
}

func renderResult(r result) []byte {
	var b bytes.Buffer
	for dir, name := range []string{"requests", "responses"} {
		fmt.Fprintf(&b, "=== %s: %d messages\n", name, len(r.msgs[dir]))
		b.Write(renderMessages(r.msgs[dir]))
		if r.detached[dir] != nil {
			fmt.Fprintf(&b, "--- detached %d bytes: %s\n", len(r.detached[dir]), quote(r.detached[dir]))
		}
	}
	return b.Bytes()
}

func renderMessages(msgs []*decoder.Message) []byte {
	var b bytes.Buffer
	for i, m := range msgs {
		fmt.Fprintf(&b, "--- message %d: %v start=%d end=%d truncated=%v incomplete=%v original-length=%d\n",
			i, m.Type, m.Start, m.End, m.Truncated, m.Incomplete, m.OriginalLength)
		fmt.Fprintf(&b, "method=%q path=%q host=%q status=%d content-type=%q transfer-encoding=%q content-encoding=%q",
			m.Method, m.Path, m.Host, m.Status, m.ContentType, m.TransferEncoding, m.ContentEncoding)
		if m.Upgrade != nil {
			fmt.Fprintf(&b, " upgrade=%q extensions=%q", m.Upgrade.Protocol, m.Upgrade.Extensions)
		}
		fmt.Fprintf(&b, "\npayload %d bytes:\n%s\n", len(m.Payload), quote(m.Payload))
	}
	return b.Bytes()
}

// quote keeps text readable and escapes anything else.
func quote(p []byte) string {
	if utf8.Valid(p) && bytes.IndexFunc(p, func(r rune) bool { return r < ' ' && r != '\n' && r != '\r' && r != '\t' }) < 0 {
		return string(p)
	}
	return strconv.Quote(string(p))
}
