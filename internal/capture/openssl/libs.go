package openssl

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/arch/x86/x86asm"
	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture/procfs"
)

// Library is a file tlstap attached its probes to.
type Library struct {
	// Path is the path the file was found or given under.
	Path string
	// Dev and Inode identify the file; uprobes attach to the inode, so one
	// inode is attached once whatever its paths.
	Dev, Inode uint64
	// Kind is the TLS library the file carries: KindOpenSSL, KindGnuTLS or
	// KindNSS (libnspr4, libssl3, or a file folding both in).
	Kind string
	// Version is OpenSSL's version as far as it could be told ("3.0"),
	// empty if unknown or not OpenSSL.
	Version string
	// Symbols are the probed functions the file has.
	Symbols []string
	// Found says how the file was found: FoundOption, FoundSearch, or one
	// of the watch package's How values with the process that mapped it.
	Found string

	offsets map[string]uint64 // file offset of each of Symbols
	// window is how long after the kernel reported the file's first
	// mapping its probes went live (zero unless found by the watcher).
	window time.Duration
}

// How files were found, besides the watcher's.
const (
	// FoundOption: named in Options.Libs or attached with AttachLib.
	FoundOption = "option"
	// FoundSearch: found by name in the usual directories, ldconfig's
	// cache or a running process's mappings when the capture started.
	FoundSearch = "search"
)

type fileID struct{ dev, inode uint64 }

// Library kinds, as in the events' tls_library.
const (
	KindOpenSSL = "openssl"
	KindGnuTLS  = "gnutls"
	KindNSS     = "nss"
)

// libKind describes how to recognise one TLS library in an ELF file.
type libKind struct {
	name string
	// probed lists the functions hooked, in attach order.
	probed []string
	// required lists alternatives: the file is used when it defines every
	// function of one of them.
	required [][]string
}

// kinds are tried in order. OpenSSL: the _ex variants appeared in 1.1.1;
// SSL_connect and SSL_accept go through SSL_do_handshake. GnuTLS: send2
// (3.6.3+), send_range and recv_seq are hooked where present, send only
// where send2 is not. NSS is two files, NSPR's libnspr4 (the I/O
// functions, which also serve files and plain sockets) and NSS's libssl3
// (SSL_ImportFD, which tells the probes which descriptors carry TLS); some
// builds (Firefox's libnss3) fold both into one file.
var kinds = []libKind{
	{
		name:     KindOpenSSL,
		probed:   []string{"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_do_handshake", "SSL_free"},
		required: [][]string{{"SSL_write", "SSL_read"}},
	},
	{
		name: KindGnuTLS,
		probed: []string{"gnutls_record_send", "gnutls_record_send2", "gnutls_record_send_range",
			"gnutls_record_recv", "gnutls_record_recv_seq", "gnutls_handshake", "gnutls_deinit"},
		required: [][]string{{"gnutls_record_send", "gnutls_record_recv", "gnutls_deinit"}},
	},
	{
		name: KindNSS,
		probed: []string{"PR_Write", "PR_Send", "PR_Read", "PR_Recv", "PR_Writev", "PR_Close",
			"SSL_ImportFD", "DTLS_ImportFD"},
		required: [][]string{{"PR_Write", "PR_Read", "PR_Close"}, {"SSL_ImportFD"}},
	},
}

// errNotTLS means a file carries none of the TLS libraries tlstap knows.
var errNotTLS = errors.New("no OpenSSL SSL_write/SSL_read, GnuTLS gnutls_record_send/recv, NSPR PR_Write/PR_Read nor NSS SSL_ImportFD symbols")

// ErrNoLibrary is returned when no usable libssl was found.
var ErrNoLibrary = errors.New("no OpenSSL libssl found: install libssl3 (or libssl1.1), or pass the library or a binary linking OpenSSL statically with --libssl PATH")

// usualDirs are searched for libssl when no library is given.
var usualDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib", "/usr/local/lib64",
}

var libsslName = regexp.MustCompile(`^(lib(ssl|gnutls)\.so(\.\d+)*|libnspr4\.so|libssl3\.so)$`)

// isLibssl reports whether path names a libssl, libgnutls, libnspr4 or
// NSS libssl3 shared object by its file name.
func isLibssl(path string) bool { return libsslName.MatchString(filepath.Base(path)) }

// discover finds the default set of libraries: system libssl, libgnutls,
// libnspr4 and NSS's libssl3 in the usual places and ldconfig's cache,
// plus whatever such files running processes have mapped (containers,
// private builds). Files without the library's functions are left out.
func discover() []string {
	var paths []string
	for _, d := range usualDirs {
		for _, n := range []string{"libssl.so.3", "libssl.so.1.1", "libgnutls.so.30", "libnspr4.so", "libssl3.so"} {
			paths = append(paths, filepath.Join(d, n))
		}
	}
	paths = append(paths, ldconfigLibssl()...)
	if mapped, err := procfs.ScanMapped("/proc", isLibssl); err == nil {
		for _, m := range mapped {
			paths = append(paths, m.HostPath)
		}
	}
	return paths
}

// ldconfigLibssl lists libssl from ldconfig's cache; no ldconfig, no entries.
func ldconfigLibssl() []string {
	bin, err := exec.LookPath("ldconfig")
	if err != nil {
		bin = "/sbin/ldconfig"
	}
	out, err := exec.Command(bin, "-p").Output()
	if err != nil {
		return nil
	}
	return parseLdconfig(bytes.NewReader(out))
}

// parseLdconfig extracts libssl, libgnutls, libnspr4 and libssl3 paths from `ldconfig -p` output, whose lines
// look like "\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3".
func parseLdconfig(r io.Reader) []string {
	var paths []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, path, ok := strings.Cut(strings.TrimSpace(sc.Text()), " => ")
		fields := strings.Fields(name)
		if !ok || len(fields) == 0 || !isLibssl(fields[0]) {
			continue
		}
		paths = append(paths, strings.TrimSpace(path))
	}
	return paths
}

// inspect identifies a candidate file and tells which probed symbols it has
// and the attach cookie of its data probes, which tells the BPF side where
// the TLS version sits: for OpenSSL its offset in the SSL struct plus one,
// for GnuTLS see gnutlsCookie; 0 when unknown.
func inspect(path string) (Library, uint64, error) { return inspectELF(path, true) }

// inspectELF is inspect; without static it reads only the dynamic symbol
// table, which is all a shared library or an executable that exports its
// TLS functions (node) needs, and is cheap enough to run on every program
// that starts.
func inspectELF(path string, static bool) (Library, uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Library{}, 0, err
	}
	f, err := elf.Open(path)
	if err != nil {
		return Library{}, 0, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()

	// have maps each probed function the file defines to its file offset,
	// which the uprobes are attached at: looking the symbols up again
	// would read node's 75,000 dynamic symbols a second time.
	have := map[string]uint64{}
	var versions []string
	var gnutlsVersion uint64 // gnutls_protocol_get_version's address
	var versionNum uint64    // OpenSSL_version_num's address
	add := func(syms []elf.Symbol) {
		for _, s := range syms {
			if s.Section == elf.SHN_UNDEF || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
				continue
			}
			switch s.Name {
			case "gnutls_protocol_get_version":
				gnutlsVersion = s.Value
			case "OpenSSL_version_num":
				versionNum = s.Value
			}
			if _, ok := probedSet[s.Name]; ok {
				if off, ok := fileOffset(f, s.Value); ok {
					have[s.Name] = off
				}
			}
			if strings.HasPrefix(s.Version, "OPENSSL_") && !slices.Contains(versions, s.Version) {
				versions = append(versions, s.Version)
			}
		}
	}
	if syms, err := f.DynamicSymbols(); err == nil {
		add(syms)
	}
	if static {
		if syms, err := f.Symbols(); err == nil {
			add(syms)
		}
	}
	lib := Library{Path: path, Dev: uint64(st.Dev), Inode: st.Ino}
	k, ok := kindOf(have)
	if !ok {
		return lib, 0, fmt.Errorf("%s: %w", path, errNotTLS)
	}
	lib.Kind = k.name
	lib.offsets = map[string]uint64{}
	if _, ok := have["gnutls_record_send2"]; ok {
		// gnutls_record_send is a tail call of send2 (3.6.3 on): probing
		// both would trap every send twice for nothing.
		delete(have, "gnutls_record_send")
	}
	for _, s := range k.probed {
		if off, ok := have[s]; ok {
			lib.Symbols = append(lib.Symbols, s)
			lib.offsets[s] = off
		}
	}
	if k.name == KindGnuTLS {
		return lib, gnutlsCookie(f, gnutlsVersion), nil
	}
	if k.name != KindOpenSSL {
		return lib, 0, nil
	}
	major, minor, ok := versionFromSymbols(versions)
	if !ok {
		major, minor, ok = versionFromCode(f, versionNum)
	}
	if !ok {
		major, minor, ok = versionFromText(f)
	}
	// Unknown (a static binary without the version string) is tried at
	// offset 0: right up to 3.1, and from 3.2 on it reads SSL's type field,
	// 0, which the BPF side rejects as a version.
	off := versionOffset(1, 1)
	if ok {
		lib.Version = fmt.Sprintf("%d.%d", major, minor)
		off = versionOffset(major, minor)
		// Only the layouts versionOffset knows are probed: SSL_read and
		// SSL_write kept their signatures, but a release tlstap has not
		// seen may not have, and a traced program must never pay for it.
		if off == 0 {
			return lib, 0, fmt.Errorf("%s: OpenSSL %s is not a version tlstap supports (1.1, 3.x)", path, lib.Version)
		}
	}
	return lib, off, nil
}

// kindOf returns the first library kind whose required functions the
// file defines.
func kindOf(have map[string]uint64) (libKind, bool) {
	for _, k := range kinds {
		for _, req := range k.required {
			if !slices.ContainsFunc(req, func(s string) bool { _, ok := have[s]; return !ok }) {
				return k, true
			}
		}
	}
	return libKind{}, false
}

// probedSet holds every function some kind probes.
var probedSet = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, k := range kinds {
		for _, s := range k.probed {
			m[s] = struct{}{}
		}
	}
	return m
}()

// fileOffset converts a symbol's virtual address to the file offset a
// uprobe is attached at, through the executable segment holding it.
func fileOffset(f *elf.File, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Memsz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

var symVersion = regexp.MustCompile(`^OPENSSL_(\d+)[._](\d+)`)

// versionFromSymbols reads the highest OPENSSL_x.y symbol version: a library
// exports the version nodes of every release up to its own minor release.
func versionFromSymbols(versions []string) (major, minor int, ok bool) {
	for _, v := range versions {
		m := symVersion.FindStringSubmatch(v)
		if m == nil {
			continue
		}
		a, _ := strconv.Atoi(m[1])
		b, _ := strconv.Atoi(m[2])
		if !ok || a > major || (a == major && b > minor) {
			major, minor, ok = a, b, true
		}
	}
	return major, minor, ok
}

var versionText = regexp.MustCompile(`^OpenSSL (\d+)\.(\d+)\.\d+[a-z]? `)

// versionFromText finds OPENSSL_VERSION_TEXT in a statically linked binary.
func versionFromText(f *elf.File) (major, minor int, ok bool) {
	s := f.Section(".rodata")
	if s == nil {
		return 0, 0, false
	}
	data, err := s.Data()
	if err != nil {
		return 0, 0, false
	}
	// A regexp over all of .rodata takes seconds in node (tens of MB);
	// jumping to each "OpenSSL " takes milliseconds.
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("OpenSSL "))
		if j < 0 {
			return 0, 0, false
		}
		i += j
		if m := versionText.FindSubmatch(data[i:min(len(data), i+32)]); m != nil {
			major, _ = strconv.Atoi(string(m[1]))
			minor, _ = strconv.Atoi(string(m[2]))
			return major, minor, true
		}
		i++
	}
}

// versionFromCode reads the OpenSSL version a static build (node) carries
// from its OpenSSL_version_num at vaddr, which returns the constant
// OPENSSL_VERSION_NUMBER (0xMNN00PPS): `mov eax, imm32; ret`. Without it
// the version had to be found as text in .rodata, which in node means
// reading tens of MB, 0.1 to 0.6 s, while the program it starts runs
// uncaptured.
func versionFromCode(f *elf.File, vaddr uint64) (major, minor int, ok bool) {
	if vaddr == 0 || f.Machine != elf.EM_X86_64 {
		return 0, 0, false
	}
	code := make([]byte, 16)
	if !readVaddr(f, vaddr, code) {
		return 0, 0, false
	}
	return versionFromNumCode(code)
}

// versionFromNumCode decodes the pattern versionFromCode describes.
func versionFromNumCode(code []byte) (major, minor int, ok bool) {
	mov, err := x86asm.Decode(code, 64)
	if err != nil || mov.Op != x86asm.MOV || mov.Args[0] != x86asm.EAX {
		return 0, 0, false
	}
	imm, isImm := mov.Args[1].(x86asm.Imm)
	ret, err := x86asm.Decode(code[mov.Len:], 64)
	if !isImm || err != nil || ret.Op != x86asm.RET {
		return 0, 0, false
	}
	n := uint32(imm)
	return int(n >> 28), int(n >> 20 & 0xff), n>>28 != 0
}

// versionOffset is where struct ssl_st keeps `int version`, plus one (zero
// means unknown). Up to 3.1 it is the first member; from 3.2 on SSL is a
// 64-byte header embedded in SSL_CONNECTION, followed by version. The BPF
// side only accepts values that look like a TLS version, so a wrong guess
// yields 0, never a wrong version.
func versionOffset(major, minor int) uint64 {
	switch {
	case major == 1 && minor >= 1, major == 3 && minor <= 1:
		return 0 + 1
	case major == 3:
		return 64 + 1
	}
	return 0
}
