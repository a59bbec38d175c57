package openssl

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attachTracepoints attaches the programs every library shares. They run
// on every close, socket send and receive system-wide but return after a
// look at the thread's own storage unless the thread is inside a probed
// TLS call (or the connection is a closing one). The fd of a connection is
// learned by the sock tracepoints from the syscall's own arguments, so no
// tracepoint runs at the entry of every read and write (bpf/tlstap.bpf.c,
// syscall_fd).
func (s *Source) attachTracepoints() error {
	p := &s.objs.tlstapPrograms
	l, err := link.Tracepoint("syscalls", "sys_enter_close", p.TlstapSysEnterClose, nil)
	if err != nil {
		return fmt.Errorf("attach tracepoint syscalls:sys_enter_close (needs CONFIG_FTRACE_SYSCALLS and tracefs): %w", err)
	}
	s.links = append(s.links, l)
	l, err = link.Tracepoint("sched", "sched_process_exit", p.TlstapSchedProcessExit, nil)
	if err != nil {
		return fmt.Errorf("attach tracepoint sched:sched_process_exit: %w", err)
	}
	s.links = append(s.links, l)
	for _, prog := range []*ebpf.Program{p.TlstapSockSendLength, p.TlstapSockRecvLength} {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("attach tp_btf %s (needs kernel 6.3+ with BTF): %w", prog, err)
		}
		s.links = append(s.links, l)
	}
	return nil
}

// Libraries returns the files the probes are attached to, by path.
func (s *Source) Libraries() []Library {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Library, 0, len(s.libs))
	for _, a := range s.libs {
		out = append(out, a.Library)
	}
	slices.SortFunc(out, func(a, b Library) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// AttachLib attaches the probes to path, a libssl or a binary with OpenSSL
// linked in. A file already attached (same inode, whatever the path) is not
// attached twice. When path was attached before but now names another file
// (libssl upgraded in place) the new file is attached first and the old one
// detached after, so no call goes unseen.
func (s *Source) AttachLib(path string) (Library, error) {
	lib, verOff, err := inspect(path)
	if err != nil {
		return Library{}, err
	}
	lib.Found = FoundOption
	return s.attachLib(lib, verOff, time.Time{})
}

// attachLib attaches lib unless its file is attached already; mapped is
// when the watcher saw it mapped, zero otherwise.
func (s *Source) attachLib(lib Library, verOff uint64, mapped time.Time) (Library, error) {
	path := lib.Path
	id := fileID{lib.Dev, lib.Inode}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Library{}, ErrClosed
	}
	if a, ok := s.libs[id]; ok {
		return a.Library, nil
	}
	a, err := s.attach(lib, verOff)
	if err != nil {
		return Library{}, err
	}
	if !mapped.IsZero() {
		a.window = time.Since(mapped)
	}
	s.libs[id] = a
	for oid, old := range s.libs {
		if oid != id && old.Path == path {
			closeLinks(old.links)
			delete(s.libs, oid)
		}
	}
	return lib, nil
}

// DetachLib detaches the probes from the file attached under path.
func (s *Source) DetachLib(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for id, a := range s.libs {
		if a.Path == path {
			closeLinks(a.links)
			delete(s.libs, id)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("detach %s: not attached", path)
	}
	return nil
}

// probe is one hooked function: enter runs at its entry, ret at its
// return; either may be nil, not both.
type probe struct{ enter, ret *ebpf.Program }

// probes maps each hooked function to its programs. Every library shares
// the C helpers behind them, so GnuTLS's and NSS's close and GnuTLS's
// handshake use OpenSSL's programs (they only read the first argument).
func (s *Source) probes() map[string]probe {
	p := &s.objs.tlstapPrograms
	return map[string]probe{
		"SSL_write":        {p.TlstapSslWriteEnter, p.TlstapSslReturn},
		"SSL_write_ex":     {p.TlstapSslWriteExEnter, p.TlstapSslReturn},
		"SSL_read":         {p.TlstapSslReadEnter, p.TlstapSslReturn},
		"SSL_read_ex":      {p.TlstapSslReadExEnter, p.TlstapSslReturn},
		"SSL_do_handshake": {p.TlstapSslHandshakeEnter, p.TlstapSslHandshakeReturn},
		"SSL_free":         {p.TlstapSslFree, nil},

		"gnutls_record_send":       {p.TlstapGnutlsSendEnter, p.TlstapGnutlsReturn},
		"gnutls_record_send2":      {p.TlstapGnutlsSendEnter, p.TlstapGnutlsReturn},
		"gnutls_record_send_range": {p.TlstapGnutlsSendEnter, p.TlstapGnutlsReturn},
		"gnutls_record_recv":       {p.TlstapGnutlsRecvEnter, p.TlstapGnutlsReturn},
		"gnutls_record_recv_seq":   {p.TlstapGnutlsRecvEnter, p.TlstapGnutlsReturn},
		"gnutls_handshake":         {p.TlstapGnutlsHandshakeEnter, p.TlstapSslHandshakeReturn},
		"gnutls_deinit":            {p.TlstapSslFree, nil},

		// NSS: the PR_* functions capture only descriptors carrying NSS's
		// SSL layer, whose identity SSL_ImportFD's return teaches
		// (bpf/nss.h); PR_Close ends the connection like SSL_free.
		"PR_Write":      {p.TlstapNssWriteEnter, p.TlstapSslReturn},
		"PR_Send":       {p.TlstapNssWriteEnter, p.TlstapSslReturn},
		"PR_Read":       {p.TlstapNssReadEnter, p.TlstapSslReturn},
		"PR_Recv":       {p.TlstapNssRecvEnter, p.TlstapSslReturn},
		"PR_Writev":     {p.TlstapNssWritevEnter, p.TlstapNssWritevReturn},
		"PR_Close":      {p.TlstapSslFree, nil},
		"SSL_ImportFD":  {nil, p.TlstapNssImportReturn},
		"DTLS_ImportFD": {nil, p.TlstapNssImportReturn},
	}
}

func (s *Source) attach(lib Library, verOff uint64) (*attached, error) {
	ex, err := link.OpenExecutable(lib.Path)
	if err != nil {
		return nil, err
	}
	probes := s.probes()
	a := &attached{Library: lib}
	// Return probes first, entry probes after (see closeLinks). A function
	// without a return probe (the close) goes last.
	for _, sym := range lib.Symbols {
		pr := probes[sym]
		if pr.ret == nil {
			continue
		}
		l, err := ex.Uretprobe(sym, pr.ret, &link.UprobeOptions{Address: lib.offsets[sym]})
		if err != nil {
			closeLinks(a.links)
			return nil, uprobeError(lib.Path, sym, err)
		}
		a.links = append(a.links, l)
	}
	for _, sym := range lib.Symbols {
		pr := probes[sym]
		if pr.enter == nil && pr.ret == nil {
			closeLinks(a.links)
			return nil, fmt.Errorf("%s: no probe for %s", lib.Path, sym)
		}
		if pr.enter == nil {
			continue
		}
		opts := &link.UprobeOptions{Address: lib.offsets[sym]}
		if pr.ret != nil {
			opts.Cookie = verOff
		}
		l, err := ex.Uprobe(sym, pr.enter, opts)
		if err != nil {
			closeLinks(a.links)
			return nil, uprobeError(lib.Path, sym, err)
		}
		a.links = append(a.links, l)
	}
	return a, nil
}

// closeLinks closes in reverse order of attachment, so entry probes go
// before return probes: a return without its entry is ignored, while an
// entry without its return would leave the thread marked as inside a call.
func closeLinks(ls []link.Link) {
	for _, l := range slices.Backward(ls) {
		l.Close()
	}
}
