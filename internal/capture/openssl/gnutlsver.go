package openssl

import (
	"debug/elf"

	"golang.org/x/arch/x86/x86asm"
)

// cookieGnuTLS marks a GnuTLS attach cookie (COOKIE_GNUTLS in bpf/tlstap.bpf.c).
const cookieGnuTLS = 1 << 63

// gnutlsCookie returns the attach cookie that lets the BPF side read a
// GnuTLS session's negotiated version, or 0 if it cannot be told.
//
// The version is session->security_parameters.pversion->id, whose offsets
// change between GnuTLS releases and builds. Rather than keep a table of
// them, they are read from the code of gnutls_protocol_get_version, which
// does nothing else (3.4 to 3.8, x86-64):
//
//	mov  rax, [rdi+OFF1]   ; the version entry
//	test rax, rax
//	je   unknown
//	mov  eax, [rax+OFF2]   ; its protocol id
//	ret
//
// Any other shape gives 0 and the events carry no version, never a wrong
// one: the BPF side also accepts only ids that name a TLS version.
func gnutlsCookie(f *elf.File, vaddr uint64) uint64 {
	if vaddr == 0 || f.Machine != elf.EM_X86_64 {
		return 0
	}
	code := make([]byte, 32)
	if !readVaddr(f, vaddr, code) {
		return 0
	}
	return gnutlsCookieFromCode(code)
}

// gnutlsCookieFromCode decodes the pattern gnutlsCookie describes.
func gnutlsCookieFromCode(code []byte) uint64 {
	var insts []x86asm.Inst
	for len(code) > 0 && len(insts) < 4 {
		in, err := x86asm.Decode(code, 64)
		if err != nil {
			return 0
		}
		insts = append(insts, in)
		code = code[in.Len:]
	}
	if len(insts) < 4 {
		return 0
	}
	off1, ok1 := loadFrom(insts[0], x86asm.RAX, x86asm.RDI, 8)
	off2, ok2 := loadFrom(insts[3], x86asm.EAX, x86asm.RAX, 4)
	if !ok1 || !ok2 || insts[1].Op != x86asm.TEST || insts[2].Op != x86asm.JE {
		return 0
	}
	return cookieGnuTLS | off2<<16 | off1
}

// loadFrom matches `mov dst, [base+disp]` of size bytes with 0 <= disp <
// 64 KiB and returns disp.
func loadFrom(in x86asm.Inst, dst, base x86asm.Reg, size int) (uint64, bool) {
	if in.Op != x86asm.MOV || in.MemBytes != size {
		return 0, false
	}
	r, ok := in.Args[0].(x86asm.Reg)
	m, okm := in.Args[1].(x86asm.Mem)
	if !ok || !okm || r != dst || m.Base != base || m.Index != 0 || m.Segment != 0 || m.Disp < 0 || m.Disp >= 1<<16 {
		return 0, false
	}
	return uint64(m.Disp), true
}

// readVaddr reads len(b) bytes at virtual address vaddr from the
// executable segment holding them.
func readVaddr(f *elf.File, vaddr uint64, b []byte) bool {
	off, ok := fileOffset(f, vaddr)
	if !ok {
		return false
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && off >= p.Off && off+uint64(len(b)) <= p.Off+p.Filesz {
			n, err := p.ReadAt(b, int64(off-p.Off))
			return err == nil && n == len(b)
		}
	}
	return false
}
