package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/exporttest"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// jsonEvents reads the events of -o json output back.
func jsonEvents(t *testing.T, out string) []*eventpb.Event {
	t.Helper()
	var evs []*eventpb.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var j struct {
			Timestamp           int64
			Seq                 uint64
			RequestSeq          uint64 `json:"request_seq"`
			ConnID              uint64 `json:"conn_id"`
			Type, Status        uint32
			WSOpcode            uint32 `json:"ws_opcode"`
			Pid                 int64
			Pname, Method, Path string
			SrcIP               string `json:"src_ip"`
			DstIP               string `json:"dst_ip"`
			SrcPort             uint32 `json:"src_port"`
			DstPort             uint32 `json:"dst_port"`
			Payload             string
			PayloadEncoding     string `json:"payload_encoding"`
			Part                string
			MessageSeq          uint64 `json:"message_seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		payload := []byte(j.Payload)
		if j.PayloadEncoding == "base64" {
			var err error
			if payload, err = base64.StdEncoding.DecodeString(j.Payload); err != nil {
				t.Fatal(err)
			}
		}
		evs = append(evs, &eventpb.Event{Timestamp: j.Timestamp, Seq: j.Seq, RequestSeq: j.RequestSeq, ConnId: j.ConnID,
			Type: j.Type, Status: j.Status, WsOpcode: j.WSOpcode, Pid: j.Pid, Pname: j.Pname, Method: j.Method, Path: j.Path,
			SrcIp: j.SrcIP, DstIp: j.DstIP, SrcPort: j.SrcPort, DstPort: j.DstPort, Payload: payload,
			Part: eventpb.PartKind(eventpb.PartKind_value["PART_KIND_"+strings.ToUpper(j.Part)]), MessageSeq: j.MessageSeq})
	}
	return evs
}

// The demo exported as pcapng dissects in tshark and as HAR validates,
// both matching the events of the same run.
func TestDemoExports(t *testing.T) {
	dir := t.TempDir()
	pcap, har := filepath.Join(dir, "demo.pcapng"), filepath.Join(dir, "demo.har")
	code, stdout, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "json", "--listen", "", "--pcapng", pcap, "--har", har)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	evs := jsonEvents(t, stdout)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	exporttest.CheckPcapng(t, pcap, evs, exporttest.PcapngWant{})
	exporttest.ValidateHAR(t, har)
	exporttest.CheckHAR(t, exporttest.ReadHAR(t, har), evs)
}

// A recording rebuilds the HAR of its capture, as docs/export.md tells
// users to do after a crash.
func TestReplayRebuildsHAR(t *testing.T) {
	har := filepath.Join(t.TempDir(), "out.har")
	rec := filepath.Join("..", "engine", "testdata", "http1.rec")
	code, stdout, stderr := runMain(t, "replay", rec, "--speed", "0", "--exit", "-o", "json", "--listen", "", "--har", har)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	evs := jsonEvents(t, stdout)
	exporttest.ValidateHAR(t, har)
	h := exporttest.ReadHAR(t, har)
	if len(h.Log.Entries) == 0 {
		t.Fatal("no entries")
	}
	exporttest.CheckHAR(t, h, evs)
}

func TestExportUsageErrors(t *testing.T) {
	code, _, stderr := runMain(t, "demo", "--exit", "--listen", "", "--pcapng", filepath.Join(t.TempDir(), "x.pcapng"), "--pcapng-rotate-size", "-1")
	if code != 2 || !strings.Contains(stderr, "--pcapng-rotate-size must be >= 0") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	code, _, stderr = runMain(t, "demo", "--exit", "--listen", "", "--pcapng", filepath.Join(t.TempDir(), "no", "such", "dir.pcapng"))
	if code == 0 || !strings.Contains(stderr, "pcapng") {
		t.Errorf("unwritable --pcapng: exit %d: %s", code, stderr)
	}
}
