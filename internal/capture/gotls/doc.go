// Package gotls finds where to probe Go's crypto/tls in a Go executable.
//
// Inspect reads a file's build information (debug/buildinfo) to tell Go
// programs from the rest and learn the toolchain version, then locates
// crypto/tls.(*Conn).Write, (*Conn).Read, (*Conn).clientHandshake and
// (*Conn).serverHandshake:
// from the ELF symbol table when there is one, otherwise from the
// .gopclntab function table, which even stripped (-ldflags=-s -w) binaries
// keep because the runtime needs it.
//
// Since Go 1.18 function entries in .gopclntab are offsets from the start
// of the Go text, which the table's header used to carry. Go 1.26 writes 0
// there (it would need a relocation), so the text start is taken from the
// runtime's moduledata instead: the linker-written structure whose first
// word points at the pclntab and whose text field holds runtime.text. In
// position-independent binaries those words may be zero in the file and
// filled by R_X86_64_RELATIVE relocations, which are read as well. The
// section start is not used: with -linkmode=external the C runtime's code
// comes first.
//
// Read's plaintext is only known when it returns, and uretprobes must never
// be used on Go code (the runtime moves goroutine stacks and would find a
// rewritten return address), so Inspect also disassembles Read with
// golang.org/x/arch/x86/x86asm and lists every RET instruction. It also
// finds the end of each function's stack-check prologue (Func.Body), where
// the entry probes go so that a call whose stack grows (the prologue runs,
// runtime.morestack, the function starts over) is seen once.
//
// Binary.VersOffset is where tls.Conn keeps the negotiated version, from a
// table of Go releases whose layout was checked; -1 for the others.
//
// Only amd64 binaries built by Go 1.17 (the first with the register ABI)
// through 1.26 are accepted. Anything else, or a layout that does not check
// out, is an error wrapping ErrUnsupported: tlstap does not guess offsets.
package gotls
