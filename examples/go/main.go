// Command watch prints tlstap's event stream using the Go client package:
// the same output as the Python and Node examples, with reconnects and
// resume handled by the library.
//
//	go run ./examples/go --token-file /var/lib/tlstap/token --fingerprint AB:CD:...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		opts      client.Options
		tokenFile string
		since     int64
		count     int
		timeout   float64
		whole     bool
		noLogs    bool
		pids      list
		pnames    list
		types     list
		hosts     list
		ports     list
	)
	flag.StringVar(&opts.URL, "url", client.DefaultURL, "stream URL")
	flag.StringVar(&opts.Token, "token", os.Getenv("TLSTAP_TOKEN"), "server token (default $TLSTAP_TOKEN)")
	flag.StringVar(&tokenFile, "token-file", "", "read the token from this file (e.g. /var/lib/tlstap/token)")
	flag.StringVar(&opts.Fingerprint, "fingerprint", os.Getenv("TLSTAP_FINGERPRINT"), "SHA-256 fingerprint of the server certificate, as tlstap prints it (default $TLSTAP_FINGERPRINT)")
	flag.BoolVar(&opts.InsecureSkipVerify, "insecure", false, "DANGEROUS: accept any server certificate; anyone on the path can read the stream and the token")
	flag.Var(&pids, "pid", "only this process id (repeatable)")
	flag.Var(&pnames, "pname", "only this process name (repeatable)")
	flag.Var(&types, "type", "only this event type: 0-5 or raw, http1-request, ..., request, response, http, ws (repeatable)")
	flag.Var(&hosts, "host", "only this HTTP host, e.g. *.example.com (repeatable)")
	flag.Var(&ports, "port", "only this source or destination port (repeatable)")
	flag.BoolVar(&noLogs, "no-logs", false, "leave out tlstap's own log lines (logs=0)")
	flag.BoolVar(&opts.Replay, "replay", false, "start with every event the server still retains (since=0)")
	flag.Int64Var(&since, "since", -1, "start after this event sequence number")
	flag.IntVar(&count, "count", 0, "exit after this many events")
	flag.Float64Var(&timeout, "timeout", 0, "exit with an error if nothing arrives for this many seconds")
	flag.BoolVar(&whole, "payload", false, "print whole payloads, not only their first line")
	flag.Parse()

	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return err
		}
		opts.Token = strings.TrimSpace(string(b))
	}
	if opts.Token == "" {
		return errors.New("no token: pass -token, -token-file or set TLSTAP_TOKEN")
	}
	if opts.Fingerprint == "" && !opts.InsecureSkipVerify {
		return errors.New("no -fingerprint: pin the certificate tlstap printed, or pass -insecure")
	}
	if opts.InsecureSkipVerify {
		fmt.Fprintln(os.Stderr, "WARNING: -insecure: server certificate NOT verified")
	}
	if since >= 0 {
		opts.Since, opts.Replay = uint64(since), true
	}
	opts.Filters = client.Filters{Pnames: pnames, Types: types, Hosts: hosts, NoLogs: noLogs}
	for _, p := range pids {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return fmt.Errorf("-pid %q: %w", p, err)
		}
		opts.Filters.PIDs = append(opts.Filters.PIDs, n)
	}
	for _, p := range ports {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fmt.Errorf("-port %q: %w", p, err)
		}
		opts.Filters.Ports = append(opts.Filters.Ports, uint16(n))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := client.Dial(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()

	seen := 0
	for {
		nctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			nctx, cancel = context.WithTimeout(ctx, time.Duration(timeout*float64(time.Second)))
		}
		m, err := c.Next(nctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return fmt.Errorf("no message for %g s", timeout)
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
		switch p := m.GetPayload().(type) {
		case *eventpb.LogEntry_EventPayload:
			fmt.Println(describe(p.EventPayload, whole))
			if seen++; count > 0 && seen >= count {
				return nil
			}
		case *eventpb.LogEntry_RunLog:
			fmt.Println("log: " + p.RunLog)
		}
	}
}

func endpoint(ip string, port uint32) string {
	if ip == "" {
		return "?"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

// describe formats an event like the Python and Node examples do.
func describe(ev *eventpb.Event, whole bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s[%d] %s -> %s len=%d", ev.GetSeq(), decoder.Type(ev.GetType()), ev.GetPname(), ev.GetPid(),
		endpoint(ev.GetSrcIp(), ev.GetSrcPort()), endpoint(ev.GetDstIp(), ev.GetDstPort()), ev.GetLength())
	if ev.GetHost() != "" {
		fmt.Fprintf(&b, " host=%s", ev.GetHost())
	}
	if ev.GetStatus() != 0 {
		fmt.Fprintf(&b, " status=%d", ev.GetStatus())
	}
	if ev.GetRequestSeq() != 0 {
		fmt.Fprintf(&b, " request=#%d", ev.GetRequestSeq())
	}
	text := strings.ToValidUTF8(string(ev.GetPayload()), "\uFFFD")
	if whole {
		return b.String() + "\n" + text
	}
	first, _, _ := strings.Cut(text, "\n")
	first = strings.TrimSuffix(first, "\r")
	if ev.GetType() == 0 || strings.IndexFunc(first, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		first = fmt.Sprintf("(%d bytes)", len(ev.GetPayload()))
	}
	return b.String() + "\n  " + first
}
