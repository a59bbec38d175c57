package output

import (
	"encoding/json"
	"io"
	"time"
	"unicode/utf8"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// JSONRenderer writes one JSON object per line with every field of the
// event. The payload is a string when it is valid UTF-8
// ("payload_encoding": "utf8"), else base64 ("base64").
type JSONRenderer struct{}

// JSONEvent is the JSON form of an event; field names are the protobuf
// field names.
type JSONEvent struct {
	Timestamp        int64  `json:"timestamp"`
	Time             string `json:"time"`
	Seq              uint64 `json:"seq"`
	UUID             string `json:"uuid"`
	SrcIP            string `json:"src_ip"`
	SrcPort          uint32 `json:"src_port"`
	DstIP            string `json:"dst_ip"`
	DstPort          uint32 `json:"dst_port"`
	PID              int64  `json:"pid"`
	TID              int64  `json:"tid"`
	UID              uint32 `json:"uid"`
	Pname            string `json:"pname"`
	FD               int64  `json:"fd"`
	Type             uint32 `json:"type"`
	TypeName         string `json:"type_name"`
	DataType         uint32 `json:"data_type"`
	Version          uint32 `json:"version"`
	ConnID           uint64 `json:"conn_id"`
	StreamID         uint32 `json:"stream_id"`
	RequestSeq       uint64 `json:"request_seq"`
	LatencyNs        int64  `json:"latency_ns"`
	Truncated        bool   `json:"truncated"`
	Incomplete       bool   `json:"incomplete"`
	OriginalLength   uint64 `json:"original_length"`
	TransferEncoding string `json:"transfer_encoding"`
	ContentEncoding  string `json:"content_encoding"`
	Host             string `json:"host"`
	Method           string `json:"method"`
	Path             string `json:"path"`
	Status           uint32 `json:"status"`
	ContentType      string `json:"content_type"`
	TLSLibrary       string `json:"tls_library,omitempty"`
	WSOpcode         uint32 `json:"ws_opcode"`
	WSCloseCode      uint32 `json:"ws_close_code"`
	Length           uint32 `json:"length"`
	PayloadEncoding  string `json:"payload_encoding"`
	Payload          string `json:"payload"`

	// Streamed messages only (omitted on whole ones).
	Part           string  `json:"part,omitempty"`
	PartIndex      uint32  `json:"part_index,omitempty"`
	BodyOffset     uint64  `json:"body_offset,omitempty"`
	MessageSeq     uint64  `json:"message_seq,omitempty"`
	PartContinued  bool    `json:"part_continued,omitempty"`
	SSEEvent       string  `json:"sse_event,omitempty"`
	SSEID          string  `json:"sse_id,omitempty"`
	SSEData        *string `json:"sse_data,omitempty"`
	GRPCCompressed bool    `json:"grpc_compressed,omitempty"`
	GRPCLength     *uint32 `json:"grpc_length,omitempty"`
	GRPCStatus     *uint32 `json:"grpc_status,omitempty"`
	GRPCMessage    string  `json:"grpc_message,omitempty"`

	// Fleet attribution; absent when unknown.
	Node         string `json:"node,omitempty"`
	ContainerID  string `json:"container_id,omitempty"`
	CgroupID     uint64 `json:"cgroup_id,omitempty"`
	PodName      string `json:"pod_name,omitempty"`
	PodNamespace string `json:"pod_namespace,omitempty"`
}

// ToJSON converts an event to its JSON form.
func ToJSON(ev *eventpb.Event) JSONEvent {
	j := JSONEvent{
		Timestamp:        ev.GetTimestamp(),
		Time:             time.Unix(0, ev.GetTimestamp()).UTC().Format(time.RFC3339Nano),
		Seq:              ev.GetSeq(),
		UUID:             ev.GetUuid(),
		SrcIP:            ev.GetSrcIp(),
		SrcPort:          ev.GetSrcPort(),
		DstIP:            ev.GetDstIp(),
		DstPort:          ev.GetDstPort(),
		PID:              ev.GetPid(),
		TID:              ev.GetTid(),
		UID:              ev.GetUid(),
		Pname:            ev.GetPname(),
		FD:               int64(int32(ev.GetFd())),
		Type:             ev.GetType(),
		TypeName:         decoder.Type(ev.GetType()).String(),
		DataType:         ev.GetDataType(),
		Version:          ev.GetVersion(),
		TLSLibrary:       ev.GetTlsLibrary(),
		ConnID:           ev.GetConnId(),
		StreamID:         ev.GetStreamId(),
		RequestSeq:       ev.GetRequestSeq(),
		LatencyNs:        ev.GetLatencyNs(),
		Truncated:        ev.GetTruncated(),
		Incomplete:       ev.GetIncomplete(),
		OriginalLength:   ev.GetOriginalLength(),
		TransferEncoding: ev.GetTransferEncoding(),
		ContentEncoding:  ev.GetContentEncoding(),
		Host:             ev.GetHost(),
		Method:           ev.GetMethod(),
		Path:             ev.GetPath(),
		Status:           ev.GetStatus(),
		ContentType:      ev.GetContentType(),
		WSOpcode:         ev.GetWsOpcode(),
		WSCloseCode:      ev.GetWsCloseCode(),
		Length:           ev.GetLength(),
		Node:             ev.GetNode(),
		ContainerID:      ev.GetContainerId(),
		PodName:          ev.GetPodName(),
		PodNamespace:     ev.GetPodNamespace(),
		CgroupID:         ev.GetCgroupId(),
	}
	if k := ev.GetPart(); k != eventpb.PartKind_PART_KIND_WHOLE {
		j.Part = decoder.Part(k).String()
		j.PartIndex, j.BodyOffset, j.MessageSeq = ev.GetPartIndex(), ev.GetBodyOffset(), ev.GetMessageSeq()
		j.PartContinued = ev.GetPartContinued()
		j.SSEEvent, j.SSEID = ev.GetSseEvent(), ev.GetSseId()
		if ev.GetSseEvent() != "" || ev.GetSseId() != "" || ev.GetSseData() != "" {
			d := ev.GetSseData()
			j.SSEData = &d
		}
		if ev.GetGrpcLength() != 0 || ev.GetGrpcCompressed() {
			l := ev.GetGrpcLength()
			j.GRPCLength = &l
		}
		j.GRPCCompressed, j.GRPCStatus, j.GRPCMessage = ev.GetGrpcCompressed(), ev.GrpcStatus, ev.GetGrpcMessage()
	}
	if p := ev.GetPayload(); utf8.Valid(p) {
		j.PayloadEncoding, j.Payload = "utf8", string(p)
	} else {
		j.PayloadEncoding = "base64"
		b, _ := json.Marshal(p) // []byte marshals as a base64 string
		j.Payload = string(b[1 : len(b)-1])
	}
	return j
}

// Render implements Renderer.
func (JSONRenderer) Render(w io.Writer, ev *eventpb.Event) error {
	b, err := json.Marshal(ToJSON(ev))
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
