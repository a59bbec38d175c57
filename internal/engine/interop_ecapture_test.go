package engine_test

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// upstreamFile is ecapture's eCaptureQ schema (protobuf/proto/v1/
// ecaptureq.proto) as an ecapture client compiles it: Event with fields
// 1-11 only, Heartbeat 1-3, LogEntry 1-4. It is built here rather than
// taken from our generated code, so the test decodes our bytes the way a
// client that has never heard of tlstap's extensions does.
func upstreamFile(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	f := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String(name),
		}
	}
	msg := func(name string, num int32, typeName string, oneof bool) *descriptorpb.FieldDescriptorProto {
		fd := f(name, num, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE)
		fd.TypeName = proto.String(typeName)
		if oneof {
			fd.OneofIndex = proto.Int32(0)
		}
		return fd
	}
	const (
		i64 = descriptorpb.FieldDescriptorProto_TYPE_INT64
		u32 = descriptorpb.FieldDescriptorProto_TYPE_UINT32
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		byt = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	)
	logType := f("log_type", 1, descriptorpb.FieldDescriptorProto_TYPE_ENUM)
	logType.TypeName = proto.String(".event.LogType")
	runLog := f("run_log", 4, str)
	runLog.OneofIndex = proto.Int32(0)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("ecaptureq_upstream.proto"),
		Package: proto.String("event"),
		Syntax:  proto.String("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{{
			Name: proto.String("LogType"),
			Value: []*descriptorpb.EnumValueDescriptorProto{
				{Name: proto.String("LOG_TYPE_HEARTBEAT"), Number: proto.Int32(0)},
				{Name: proto.String("LOG_TYPE_PROCESS_LOG"), Number: proto.Int32(1)},
				{Name: proto.String("LOG_TYPE_EVENT"), Number: proto.Int32(2)},
			},
		}},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Event"), Field: []*descriptorpb.FieldDescriptorProto{
				f("timestamp", 1, i64), f("uuid", 2, str), f("src_ip", 3, str), f("src_port", 4, u32),
				f("dst_ip", 5, str), f("dst_port", 6, u32), f("pid", 7, i64), f("pname", 8, str),
				f("type", 9, u32), f("length", 10, u32), f("payload", 11, byt),
			}},
			{Name: proto.String("Heartbeat"), Field: []*descriptorpb.FieldDescriptorProto{
				f("timestamp", 1, i64), f("count", 2, i64), f("message", 3, str),
			}},
			{
				Name: proto.String("LogEntry"),
				Field: []*descriptorpb.FieldDescriptorProto{
					logType,
					msg("event_payload", 2, ".event.Event", true),
					msg("heartbeat_payload", 3, ".event.Heartbeat", true),
					runLog,
				},
				OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("payload")}},
			},
		},
	}
	// A private registry: the upstream "event" package must not clash with
	// our generated one in the global registry.
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestUpstreamSchema decodes every event of the golden recordings with the
// upstream schema and checks each of its fields against the event.
func TestUpstreamSchema(t *testing.T) {
	fd := upstreamFile(t)
	entryDesc := fd.Messages().ByName("LogEntry")
	n := 0
	for name := range recordings {
		_, entries := replayFile(t, filepath.Join("testdata", name+".rec"), "none")
		for _, en := range entries {
			n++
			ev := en.Event()
			up := dynamicpb.NewMessage(entryDesc)
			if err := proto.Unmarshal(en.Bytes, up); err != nil {
				t.Fatalf("%s #%d: upstream schema cannot decode: %v", name, en.Seq, err)
			}
			if got := up.Get(entryDesc.Fields().ByName("log_type")).Enum(); got != 2 {
				t.Errorf("%s #%d: log_type %d, want 2 (LOG_TYPE_EVENT)", name, en.Seq, got)
			}
			evf := entryDesc.Fields().ByName("event_payload")
			if !up.Has(evf) {
				t.Fatalf("%s #%d: no event_payload for the upstream schema", name, en.Seq)
			}
			upEv := up.Get(evf).Message()
			fields := upEv.Descriptor().Fields()
			want := map[protoreflect.Name]any{
				"timestamp": ev.GetTimestamp(), "uuid": ev.GetUuid(),
				"src_ip": ev.GetSrcIp(), "src_port": ev.GetSrcPort(),
				"dst_ip": ev.GetDstIp(), "dst_port": ev.GetDstPort(),
				"pid": ev.GetPid(), "pname": ev.GetPname(),
				"type": ev.GetType(), "length": ev.GetLength(), "payload": string(ev.GetPayload()),
			}
			for fname, w := range want {
				v := upEv.Get(fields.ByName(fname))
				var got any
				switch x := v.Interface().(type) {
				case []byte:
					got = string(x)
				default:
					got = x
				}
				if got != w {
					t.Errorf("%s #%d: upstream field %s = %v, want %v", name, en.Seq, fname, got, w)
				}
			}
			if int(ev.GetLength()) != len(ev.GetPayload()) {
				t.Errorf("%s #%d: length %d for a %d-byte payload", name, en.Seq, ev.GetLength(), len(ev.GetPayload()))
			}
			// The extensions (12+) are unknown to the upstream schema:
			// skipped, kept as unknown bytes, never an error.
			if len(upEv.GetUnknown()) == 0 {
				t.Errorf("%s #%d: no unknown extension fields seen", name, en.Seq)
			}
			walkUpstream(t, en.Bytes, ev)
		}
	}
	if n < 10 {
		t.Errorf("only %d events checked", n)
	}
}

// walkUpstream walks the wire bytes with protowire as a hand-written
// client would: fields 1-11 of the event by number and wire type,
// everything else skipped.
func walkUpstream(t *testing.T, b []byte, ev *eventpb.Event) {
	t.Helper()
	var evBytes []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				t.Fatal("bad event_payload")
			}
			evBytes, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			t.Fatalf("cannot skip field %d", num)
		}
		b = b[m:]
	}
	seen := map[protowire.Number]bool{}
	for len(evBytes) > 0 {
		num, typ, n := protowire.ConsumeTag(evBytes)
		if n < 0 {
			t.Fatal("bad event tag")
		}
		evBytes = evBytes[n:]
		var m int
		switch {
		case num >= 1 && num <= 11:
			seen[num] = true
			switch num {
			case 1, 4, 6, 7, 9, 10:
				if typ != protowire.VarintType {
					t.Errorf("field %d has wire type %d, want varint", num, typ)
				}
				var v uint64
				v, m = protowire.ConsumeVarint(evBytes)
				want := map[protowire.Number]uint64{1: uint64(ev.GetTimestamp()), 4: uint64(ev.GetSrcPort()), 6: uint64(ev.GetDstPort()),
					7: uint64(ev.GetPid()), 9: uint64(ev.GetType()), 10: uint64(ev.GetLength())}[num]
				if v != want {
					t.Errorf("field %d = %d, want %d", num, v, want)
				}
			default:
				if typ != protowire.BytesType {
					t.Errorf("field %d has wire type %d, want bytes", num, typ)
				}
				var v []byte
				v, m = protowire.ConsumeBytes(evBytes)
				want := map[protowire.Number]string{2: ev.GetUuid(), 3: ev.GetSrcIp(), 5: ev.GetDstIp(), 8: ev.GetPname(), 11: string(ev.GetPayload())}[num]
				if string(v) != want {
					t.Errorf("field %d = %q, want %q", num, v, want)
				}
			}
		default:
			m = protowire.ConsumeFieldValue(num, typ, evBytes)
		}
		if m < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(m))
		}
		evBytes = evBytes[m:]
	}
	// proto3 omits zero values; every non-zero one must be there.
	nonzero := map[protowire.Number]bool{
		1: ev.GetTimestamp() != 0, 2: ev.GetUuid() != "", 3: ev.GetSrcIp() != "", 4: ev.GetSrcPort() != 0,
		5: ev.GetDstIp() != "", 6: ev.GetDstPort() != 0, 7: ev.GetPid() != 0, 8: ev.GetPname() != "",
		9: ev.GetType() != 0, 10: ev.GetLength() != 0, 11: len(ev.GetPayload()) != 0,
	}
	for num, nz := range nonzero {
		if nz != seen[num] {
			t.Errorf("event #%d: upstream field %d present=%v, want %v", ev.GetSeq(), num, seen[num], nz)
		}
	}
}

// TestUpstreamHeartbeat: a tlstap heartbeat, with its last_seq extension,
// decodes under the upstream schema with fields 1-3 intact.
func TestUpstreamHeartbeat(t *testing.T) {
	fd := upstreamFile(t)
	entryDesc := fd.Messages().ByName("LogEntry")
	for _, m := range []*eventpb.LogEntry{
		{LogType: eventpb.LogType_LOG_TYPE_HEARTBEAT, Payload: &eventpb.LogEntry_HeartbeatPayload{HeartbeatPayload: &eventpb.Heartbeat{Timestamp: 1_750_000_000_000_000_000, Count: 3, Message: "tlstap heartbeat", LastSeq: 42}}},
		{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "level=INFO msg=hello"}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		up := dynamicpb.NewMessage(entryDesc)
		if err := proto.Unmarshal(b, up); err != nil {
			t.Fatal(err)
		}
		if got := up.Get(entryDesc.Fields().ByName("log_type")).Enum(); got != protoreflect.EnumNumber(m.GetLogType()) {
			t.Errorf("log_type %d, want %d", got, m.GetLogType())
		}
		if hb := m.GetHeartbeatPayload(); hb != nil {
			uh := up.Get(entryDesc.Fields().ByName("heartbeat_payload")).Message()
			hf := uh.Descriptor().Fields()
			if uh.Get(hf.ByName("timestamp")).Int() != hb.GetTimestamp() || uh.Get(hf.ByName("count")).Int() != hb.GetCount() || uh.Get(hf.ByName("message")).String() != hb.GetMessage() {
				t.Errorf("heartbeat decoded as %v", uh)
			}
			if len(uh.GetUnknown()) == 0 {
				t.Error("last_seq did not land in the unknown fields")
			}
		} else if got := up.Get(entryDesc.Fields().ByName("run_log")).String(); !strings.Contains(got, "hello") {
			t.Errorf("run_log %q", got)
		}
	}
}
