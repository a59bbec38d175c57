package gotls

import (
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"fmt"
)

// pclntab magics (runtime's pcHeader.magic, little-endian).
const (
	magic116 = 0xfffffffa // Go 1.16, 1.17: absolute entry PCs
	magic118 = 0xfffffff0 // Go 1.18, 1.19: entries relative to the text start
	magic120 = 0xfffffff1 // Go 1.20 and later
)

// moduledataText is the offset of moduledata.text, the same from Go 1.16
// to 1.26: pcHeader, six slices, findfunctab, minpc and maxpc come first.
const moduledataText = 8 + 6*24 + 8 + 8 + 8

// pclnTable returns the probed functions from .gopclntab.
func pclnTable(f *elf.File) (map[string]span, error) {
	sec := f.Section(".gopclntab")
	if sec == nil {
		sec = f.Section(".data.rel.ro.gopclntab")
	}
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("%w: no symbol table and no .gopclntab section", ErrUnsupported)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: read .gopclntab: %v", ErrUnsupported, err)
	}
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: .gopclntab of %d bytes", ErrUnsupported, len(data))
	}
	var text uint64
	switch m := binary.LittleEndian.Uint32(data); m {
	case magic116:
		// Entries are absolute; the text start is not used.
	case magic118, magic120:
		if text, err = textStart(f, sec.Addr); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: .gopclntab magic %#x", ErrUnsupported, m)
	}
	return funcsIn(data, text)
}

// funcsIn looks the probed functions up in a pclntab whose text starts at
// text. debug/gosym trusts the table's offsets, so a corrupt one can make
// it panic: that is turned into an error.
func funcsIn(pcln []byte, text uint64) (out map[string]span, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: corrupt .gopclntab: %v", ErrUnsupported, p)
		}
	}()
	if err := checkHeader(pcln); err != nil {
		return nil, err
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text))
	if err != nil {
		return nil, fmt.Errorf("%w: .gopclntab: %v", ErrUnsupported, err)
	}
	out = map[string]span{}
	for _, name := range []string{FuncWrite, FuncRead, FuncClientHandshake, FuncServerHandshake} {
		if fn := tab.LookupFunc(name); fn != nil {
			out[name] = span{fn.Entry, fn.End}
		}
	}
	return out, nil
}

// checkHeader bounds the counts in the pcHeader that debug/gosym sizes its
// allocations by before it reads anything else: a corrupt table could
// otherwise ask for gigabytes, which no recover catches. Every function
// table entry takes at least 8 bytes, and every file name at least one.
func checkHeader(pcln []byte) error {
	if len(pcln) < 24 {
		return fmt.Errorf("%w: .gopclntab header of %d bytes", ErrUnsupported, len(pcln))
	}
	if q := pcln[6]; q != 1 && q != 2 && q != 4 {
		return fmt.Errorf("%w: .gopclntab instruction size quantum %d", ErrUnsupported, q)
	}
	var nfunc, nfiles uint64
	switch pcln[7] {
	case 4:
		nfunc, nfiles = uint64(binary.LittleEndian.Uint32(pcln[8:])), uint64(binary.LittleEndian.Uint32(pcln[12:]))
	case 8:
		nfunc, nfiles = binary.LittleEndian.Uint64(pcln[8:]), binary.LittleEndian.Uint64(pcln[16:])
	default:
		return fmt.Errorf("%w: .gopclntab pointer size %d", ErrUnsupported, pcln[7])
	}
	if n := uint64(len(pcln)); nfunc > n/8 || nfiles > n {
		return fmt.Errorf("%w: .gopclntab claims %d functions and %d files in %d bytes", ErrUnsupported, nfunc, nfiles, n)
	}
	return nil
}

// textStart finds runtime.firstmoduledata by its first word, the address of
// the pclntab, and returns its text field. A word the dynamic loader
// fills (PIE) is read from its R_X86_64_RELATIVE relocation.
func textStart(f *elf.File, pclntab uint64) (uint64, error) {
	mem, err := newImage(f)
	if err != nil {
		return 0, err
	}
	text := f.Section(".text")
	if text == nil {
		return 0, fmt.Errorf("%w: no .text section", ErrUnsupported)
	}
	return mem.textStart(pclntab, span{text.Addr, text.Addr + text.Size})
}

// textStart returns moduledata.text of the moduledata whose first word is
// pclntab; it must lie in text.
func (m *image) textStart(pclntab uint64, text span) (uint64, error) {
	var found []uint64
	for _, at := range m.find(pclntab) {
		if t, ok := m.word(at + moduledataText); ok && t >= text.entry && t < text.end {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return 0, fmt.Errorf("%w: runtime moduledata not found", ErrUnsupported)
	case len(found) > 1 && !allSame(found):
		return 0, fmt.Errorf("%w: %d candidates for the runtime moduledata", ErrUnsupported, len(found))
	}
	return found[0], nil
}

func allSame(v []uint64) bool {
	for _, x := range v[1:] {
		if x != v[0] {
			return false
		}
	}
	return true
}

// image is the executable's initialised data as the loader leaves it:
// section contents overlaid with relative relocations.
type image struct {
	secs  []imageSec
	relas map[uint64]uint64 // address -> value, from R_X86_64_RELATIVE
}

type imageSec struct {
	addr uint64
	data []byte
}

// maxDataBytes bounds how much data Inspect reads to find the moduledata.
const maxDataBytes = 256 << 20

func newImage(f *elf.File) (*image, error) {
	m := &image{relas: map[uint64]uint64{}}
	total := uint64(0)
	for _, s := range f.Sections {
		// moduledata lives in .noptrdata; PIE and external links may move
		// Go's data into .data.rel.ro or .data, so every allocated,
		// writable data section is searched.
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_EXECINSTR != 0 {
			continue
		}
		if s.Flags&elf.SHF_WRITE == 0 && s.Name != ".data.rel.ro" {
			continue
		}
		if total += s.Size; total > maxDataBytes {
			return nil, fmt.Errorf("%w: data sections larger than %d bytes", ErrUnsupported, maxDataBytes)
		}
		d, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %v", ErrUnsupported, s.Name, err)
		}
		m.secs = append(m.secs, imageSec{s.Addr, d})
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		d, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %v", ErrUnsupported, s.Name, err)
		}
		for ; len(d) >= 24; d = d[24:] {
			off := binary.LittleEndian.Uint64(d)
			info := binary.LittleEndian.Uint64(d[8:])
			if elf.R_X86_64(info&0xffffffff) == elf.R_X86_64_RELATIVE {
				m.relas[off] = binary.LittleEndian.Uint64(d[16:])
			}
		}
	}
	return m, nil
}

// word returns the 8 bytes at addr after relocation.
func (m *image) word(addr uint64) (uint64, bool) {
	if v, ok := m.relas[addr]; ok {
		return v, true
	}
	for _, s := range m.secs {
		if addr >= s.addr && addr-s.addr <= uint64(len(s.data)) && uint64(len(s.data))-(addr-s.addr) >= 8 {
			return binary.LittleEndian.Uint64(s.data[addr-s.addr:]), true
		}
	}
	return 0, false
}

// find returns the 8-byte aligned addresses holding v after relocation.
func (m *image) find(v uint64) []uint64 {
	var out []uint64
	for at, val := range m.relas {
		if val == v {
			out = append(out, at)
		}
	}
	for _, s := range m.secs {
		for i := (8 - s.addr%8) % 8; i+8 <= uint64(len(s.data)); i += 8 {
			if binary.LittleEndian.Uint64(s.data[i:]) == v {
				if _, relocated := m.relas[s.addr+i]; !relocated {
					out = append(out, s.addr+i)
				}
			}
		}
	}
	return out
}
