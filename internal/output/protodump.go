package output

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxDumpDepth bounds the nesting decodeRaw follows, so hostile input
// cannot recurse deeply.
const maxDumpDepth = 16

// appendDecodeRaw appends msg as `protoc --decode_raw` prints a message
// without its schema: one "number: value" line per field, length-delimited
// fields shown as a nested message when they parse as one, else as a quoted
// string. ok is false when msg is not a protobuf message.
func appendDecodeRaw(b, msg []byte, indent int) (_ []byte, ok bool) {
	start := len(b)
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 || num > protowire.MaxValidNumber {
			return b[:start], false
		}
		msg = msg[n:]
		b = appendIndent(b, indent)
		b = strconv.AppendInt(b, int64(num), 10)
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(msg)
			if n < 0 {
				return b[:start], false
			}
			b = fmt.Appendf(b, ": %d\n", v)
			msg = msg[n:]
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(msg)
			if n < 0 {
				return b[:start], false
			}
			b = fmt.Appendf(b, ": 0x%08x\n", v)
			msg = msg[n:]
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(msg)
			if n < 0 {
				return b[:start], false
			}
			b = fmt.Appendf(b, ": 0x%016x\n", v)
			msg = msg[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return b[:start], false
			}
			msg = msg[n:]
			if len(v) > 0 && indent < maxDumpDepth {
				nested := append(b, " {\n"...)
				if nested, ok := appendDecodeRaw(nested, v, indent+1); ok {
					b = appendIndent(nested, indent)
					b = append(b, "}\n"...)
					continue
				}
			}
			if utf8.Valid(v) {
				b = append(b, ": "...)
				b = strconv.AppendQuote(b, string(v))
			} else {
				b = fmt.Appendf(b, ": %q", v)
			}
			b = append(b, '\n')
		default:
			// Groups are deprecated and never in gRPC payloads worth a
			// dump; anything else is not protobuf.
			return b[:start], false
		}
	}
	return b, true
}

func appendIndent(b []byte, n int) []byte {
	for range n {
		b = append(b, "  "...)
	}
	return b
}
