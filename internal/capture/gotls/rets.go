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

// maxPrologue bounds the instructions of a stack-check prologue: the
// largest form (huge frames) is MOV, SUB, JB, CMP, JBE.
const maxPrologue = 5

// bodyOffset returns the offset of the first instruction after the stack
// check that Go 1.17 to 1.26 put at the start of every function that may
// grow its stack (register ABI, g in R14):
//
//	CMPQ SP, 16(R14)                  small frames
//	LEAQ -N(SP), R12; CMPQ R12, 16(R14)   larger ones
//	MOVQ SP, R12; SUBQ $N, R12; JB more; CMPQ R12, 16(R14)   huge ones
//	JBE more
//
// where "more" spills the argument registers, calls runtime.morestack and
// jumps back to the function's first instruction. An entry uprobe fires
// again on that second pass; a probe at the body offset fires once per call,
// since the second pass passes the check. The prologue only writes R12 and
// the flags, so the register ABI's arguments are intact there.
//
// ok is false when code does not start with that exact sequence (a
// function without a stack check, or a layout not understood), when the
// branch does not lead to a block that jumps back to offset 0, or when any
// other branch in the function targets the body offset (then a probe there
// would fire more than once per call): the caller then probes the entry.
func bodyOffset(code []byte) (body uint64, ok bool) {
	off, checked := 0, false
	for range maxPrologue {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			return 0, false
		}
		next := off + inst.Len
		switch {
		case isStackCmp(inst):
			checked = true
		case checked && inst.Op == x86asm.JBE:
			if !leadsToMorestack(code, next, inst) {
				return 0, false
			}
			if targeted(code, uint64(next)) {
				return 0, false
			}
			return uint64(next), true
		case !checked && writesOnlyR12(inst):
		case !checked && inst.Op == x86asm.JB:
			if !leadsToMorestack(code, next, inst) {
				return 0, false
			}
		default:
			return 0, false
		}
		off = next
		if off >= len(code) {
			return 0, false
		}
	}
	return 0, false
}

// isStackCmp reports CMP SP, 16(R14) or CMP R12, 16(R14): the stack
// pointer (or the frame's lowest address) against g.stackguard0.
func isStackCmp(inst x86asm.Inst) bool {
	if inst.Op != x86asm.CMP {
		return false
	}
	r, ok := inst.Args[0].(x86asm.Reg)
	m, isMem := inst.Args[1].(x86asm.Mem)
	return ok && (r == x86asm.RSP || r == x86asm.R12) && isMem &&
		m.Base == x86asm.R14 && m.Index == 0 && m.Disp == 16 && m.Segment == 0
}

// writesOnlyR12 reports the instructions that compute the frame's lowest
// address in R12 from SP: LEAQ -N(SP), R12; MOVQ SP, R12; SUBQ $N, R12.
func writesOnlyR12(inst x86asm.Inst) bool {
	if r, ok := inst.Args[0].(x86asm.Reg); !ok || r != x86asm.R12 {
		return false
	}
	switch inst.Op {
	case x86asm.LEA:
		m, ok := inst.Args[1].(x86asm.Mem)
		return ok && m.Base == x86asm.RSP && m.Index == 0
	case x86asm.MOV:
		r, ok := inst.Args[1].(x86asm.Reg)
		return ok && r == x86asm.RSP
	case x86asm.SUB:
		_, ok := inst.Args[1].(x86asm.Imm)
		return ok
	}
	return false
}

// leadsToMorestack reports whether the conditional branch inst, whose next
// instruction is at next, goes forward to a block that calls something and
// then jumps back to offset 0, as the stack-growth path does.
func leadsToMorestack(code []byte, next int, inst x86asm.Inst) bool {
	rel, ok := inst.Args[0].(x86asm.Rel)
	if !ok {
		return false
	}
	at := next + int(rel)
	if at <= next || at >= len(code) {
		return false
	}
	called := false
	for n := 0; n < 32 && at < len(code); n++ {
		in, err := x86asm.Decode(code[at:], 64)
		if err != nil {
			return false
		}
		switch in.Op {
		case x86asm.CALL:
			called = true
		case x86asm.JMP:
			r, ok := in.Args[0].(x86asm.Rel)
			return ok && called && at+in.Len+int(r) == 0
		case x86asm.RET:
			return false
		}
		at += in.Len
	}
	return false
}

// targeted reports whether a relative jump or call anywhere in code goes
// to target, or the code cannot be decoded.
func targeted(code []byte, target uint64) bool {
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			return true
		}
		off += inst.Len
		if r, ok := inst.Args[0].(x86asm.Rel); ok && int64(off)+int64(r) == int64(target) {
			return true
		}
	}
	return false
}
