package gotls

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// retOffsets returns the offsets of the RET instructions in code, one
// function's machine code. It decodes instruction by instruction from the
// start, so bytes inside other instructions are never mistaken for RET; an
// undecodable instruction is an error rather than a guess.
func retOffsets(code []byte) ([]uint64, error) {
	var rets []uint64
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			return nil, fmt.Errorf("offset %#x: %v", off, err)
		}
		if inst.Op == x86asm.RET {
			rets = append(rets, uint64(off))
		}
		off += inst.Len
	}
	return rets, nil
}
