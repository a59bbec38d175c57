package gotls

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The toolchains whose ABI and tables this package understands. 1.17 is the
// first with the register ABI on amd64; newer releases are refused until
// someone has checked them.
const (
	minMinor = 17
	maxMinor = 26
)

// Names of the probed functions as the Go toolchain spells them.
const (
	FuncWrite           = "crypto/tls.(*Conn).Write"
	FuncRead            = "crypto/tls.(*Conn).Read"
	FuncClientHandshake = "crypto/tls.(*Conn).clientHandshake"
	FuncServerHandshake = "crypto/tls.(*Conn).serverHandshake"
)

var (
	// ErrNotGo means the file is not a Go executable.
	ErrNotGo = errors.New("not a Go executable")
	// ErrNoTLS means the Go program does not contain crypto/tls's
	// connection code: there is nothing to capture, and nothing is wrong.
	ErrNoTLS = errors.New("no crypto/tls in this Go executable")
	// ErrUnsupported means a Go program whose version or layout tlstap
	// does not understand; it is left alone.
	ErrUnsupported = errors.New("unsupported Go executable")
)

// Binary is what the probes need to know about one Go executable.
type Binary struct {
	// GoVersion is the toolchain that built it, as in its build info
	// ("go1.26.8").
	GoVersion string
	// Write and Read are crypto/tls.(*Conn).Write and Read.
	Write, Read Func
	// ClientHandshake and ServerHandshake are (*Conn).clientHandshake and
	// serverHandshake, the functions that run a handshake (through
	// Conn.handshakeFn). Not handshakeContext: every Write and Read calls
	// it, and returns at once once the handshake is done, so a probe there
	// costs a trap per call for nothing. Either may be missing (Entry 0):
	// a program that is only a client links no server handshake.
	ClientHandshake, ServerHandshake Func
	// Stripped is set when the functions came from .gopclntab because the
	// file has no symbol table.
	Stripped bool
	// GAtFSMinus8 is set when the running goroutine's g can be read at -8
	// from the thread's FS base: the executable's only thread-local
	// variable is the runtime's g slot (PT_TLS of 8 bytes), which both Go's
	// linker and, with -linkmode=external, the system linker place right
	// below the thread pointer.
	GAtFSMinus8 bool
	// VersOffset is the offset of tls.Conn's vers field for this Go
	// version, -1 when its layout is not known.
	VersOffset int
}

// Func is one function, located by file offsets as uprobes want them.
type Func struct {
	// Entry is the file offset of the first instruction.
	Entry uint64
	// Body is the file offset of the first instruction after the stack
	// check, where the entry probes go (see bodyOffset); Entry for a
	// function without a recognised one.
	Body uint64
	// Rets are the file offsets of its RET instructions.
	Rets []uint64
}

// Inspect reads the Go executable at path.
func Inspect(path string) (*Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read inspects a Go executable read from r. Errors wrap ErrNotGo, ErrNoTLS
// or ErrUnsupported, or describe a malformed file.
func Read(r io.ReaderAt) (b *Binary, err error) {
	info, err := buildinfo.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotGo, err)
	}
	if err := checkVersion(info.GoVersion); err != nil {
		return nil, err
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: %s %s, only amd64 is supported", ErrUnsupported, f.Class, f.Machine)
	}
	// debug/elf and debug/gosym trust lengths and offsets they read; a
	// corrupt file must not take tlstap down with it.
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("%w: malformed executable: %v", ErrUnsupported, p)
		}
	}()

	b = &Binary{GoVersion: info.GoVersion, VersOffset: versOffset(info.GoVersion)}
	for _, p := range f.Progs {
		if p.Type == elf.PT_TLS {
			b.GAtFSMinus8 = p.Memsz == 8 && p.Align <= 8
		}
	}
	syms, err := symbolTable(f)
	if err != nil {
		b.Stripped = true
		if syms, err = pclnTable(f); err != nil {
			return nil, err
		}
	}
	for _, fn := range []struct {
		name     string
		dst      *Func
		optional bool
	}{
		{FuncWrite, &b.Write, false},
		{FuncRead, &b.Read, false},
		{FuncClientHandshake, &b.ClientHandshake, true},
		{FuncServerHandshake, &b.ServerHandshake, true},
	} {
		s, ok := syms[fn.name]
		switch {
		case !ok && fn.name == FuncWrite:
			return nil, ErrNoTLS
		case !ok && fn.optional:
			continue
		case !ok:
			return nil, fmt.Errorf("%w: %s has %s but not %s", ErrUnsupported, info.GoVersion, FuncWrite, fn.name)
		}
		if *fn.dst, err = locate(f, fn.name, s); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// checkVersion accepts go1.17 to go1.26, release candidates included.
func checkVersion(v string) error {
	minor, ok := goMinor(v)
	if !ok {
		return fmt.Errorf("%w: toolchain version %q", ErrUnsupported, v)
	}
	if minor < minMinor || minor > maxMinor {
		return fmt.Errorf("%w: built by %s; tlstap understands go1.%d to go1.%d", ErrUnsupported, v, minMinor, maxMinor)
	}
	return nil
}

// goMinor returns N of a "go1.N..." toolchain version.
func goMinor(v string) (int, bool) {
	rest, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	minor, err := strconv.Atoi(rest[:end])
	return minor, err == nil
}

// span is a function's virtual address range.
type span struct{ entry, end uint64 }

// symbolTable returns the probed functions from .symtab.
func symbolTable(f *elf.File) (map[string]span, error) {
	syms, err := f.Symbols()
	if err != nil {
		return nil, err
	}
	out := map[string]span{}
	for _, s := range syms {
		switch s.Name {
		case FuncWrite, FuncRead, FuncClientHandshake, FuncServerHandshake:
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
				out[s.Name] = span{s.Value, s.Value + s.Size}
			}
		}
	}
	if len(out) == 0 {
		// A symbol table without Go's functions (stripped differently):
		// let the caller try .gopclntab.
		return nil, errors.New("no crypto/tls symbols")
	}
	return out, nil
}

// maxFuncBytes bounds one function's size: Read is a few hundred bytes, and
// a corrupt table must not make Inspect read megabytes.
const maxFuncBytes = 64 << 10

// locate turns a function's address range into file offsets of its entry
// and RET instructions.
func locate(f *elf.File, name string, s span) (Func, error) {
	if s.end <= s.entry || s.end-s.entry > maxFuncBytes {
		return Func{}, fmt.Errorf("%w: %s has implausible bounds %#x-%#x", ErrUnsupported, name, s.entry, s.end)
	}
	prog := loadFor(f, s.entry, s.end)
	if prog == nil {
		return Func{}, fmt.Errorf("%w: %s at %#x is in no executable segment", ErrUnsupported, name, s.entry)
	}
	code := make([]byte, s.end-s.entry)
	if _, err := prog.ReadAt(code, int64(s.entry-prog.Vaddr)); err != nil {
		return Func{}, fmt.Errorf("%w: read %s: %v", ErrUnsupported, name, err)
	}
	rets, err := retOffsets(code)
	if err != nil {
		return Func{}, fmt.Errorf("%w: disassemble %s: %v", ErrUnsupported, name, err)
	}
	if len(rets) == 0 {
		return Func{}, fmt.Errorf("%w: %s has no RET instruction", ErrUnsupported, name)
	}
	base := s.entry - prog.Vaddr + prog.Off
	fn := Func{Entry: base, Body: base, Rets: make([]uint64, len(rets))}
	if body, ok := bodyOffset(code); ok {
		fn.Body = base + body
	}
	for i, r := range rets {
		fn.Rets[i] = base + r
	}
	return fn, nil
}

// loadFor returns the executable PT_LOAD segment holding [start, end) in
// full in the file.
func loadFor(f *elf.File, start, end uint64) *elf.Prog {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 &&
			p.Vaddr <= start && end <= p.Vaddr+p.Filesz {
			return p
		}
	}
	return nil
}
