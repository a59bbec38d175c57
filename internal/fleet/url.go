package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Target is a parsed nats:// or tls:// address: where the server is, how
// to authenticate, and the stream's shape.
type Target struct {
	// Server is the URL handed to nats.Connect, with user and password or
	// token if the address had them, without the tlstap parameters.
	Server string
	// Stream is the JetStream stream (default DefaultStream) and Prefix the
	// first subject token (default DefaultPrefix); the stream captures
	// Prefix.>.
	Stream, Prefix string
	// MaxAge and MaxBytes bound what the stream retains when tlstap
	// creates it (0: unlimited). Duplicates is its de-duplication window
	// (0: the server's default, 2 minutes).
	MaxAge     time.Duration
	MaxBytes   int64
	Duplicates time.Duration
	// Buffer is how many entries wait while the server is unreachable
	// (default 65,536); InFlight how many may be unacknowledged (default
	// 4,096). Publisher only.
	Buffer, InFlight int
	// Creds is a NATS credentials file (JWT and NKey seed), NKey an NKey
	// seed file. CA, Cert and Key are PEM files for TLS: the CAs to
	// verify the server with, and a client certificate.
	Creds, NKey, CA, Cert, Key string
}

// Defaults of Target.Buffer and Target.InFlight.
const (
	DefaultBuffer   = 65536
	DefaultInFlight = 4096
)

// IsURL reports whether addr names a NATS server, as the sink registry
// needs to know before parsing it.
func IsURL(addr string) bool {
	return strings.HasPrefix(addr, "nats://") || strings.HasPrefix(addr, "tls://")
}

// ParseURL parses nats://[USER:PASS@]HOST:PORT[?PARAMS] (tls:// requires
// TLS). PARAMS are stream, subject (the prefix), max_age, max_bytes,
// duplicates, buffer, inflight, creds, nkey, ca, cert and key; any other
// parameter is an error, so a typo is not silently ignored.
func ParseURL(addr string) (Target, error) {
	t := Target{Stream: DefaultStream, Prefix: DefaultPrefix, Buffer: DefaultBuffer, InFlight: DefaultInFlight}
	u, err := url.Parse(addr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return t, fmt.Errorf("nats address: %w", err)
	}
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return t, fmt.Errorf("nats address %q: want nats:// or tls://", u.Redacted())
	}
	if u.Hostname() == "" || u.Port() == "" {
		return t, fmt.Errorf("nats address %q: want %s://host:port", u.Redacted(), u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return t, fmt.Errorf("nats address %q: no path allowed", u.Redacted())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return t, fmt.Errorf("nats address: %w", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return t, fmt.Errorf("nats address: %s given %d times", k, len(vs))
		}
		if err := t.set(k, vs[0]); err != nil {
			return t, fmt.Errorf("nats address: %s: %w", k, err)
		}
	}
	if t.Cert != "" && t.Key == "" || t.Key != "" && t.Cert == "" {
		return t, errors.New("nats address: cert and key go together")
	}
	u.RawQuery, u.Path = "", ""
	t.Server = u.String()
	return t, nil
}

func (t *Target) set(k, v string) error {
	var err error
	switch k {
	case "stream":
		if v == "" || strings.ContainsAny(v, ".*> \t\r\n/\\") {
			return fmt.Errorf("%q is not a stream name", v)
		}
		t.Stream = v
	case "subject":
		if v == "" || strings.ContainsAny(v, "*> \t\r\n") || strings.HasPrefix(v, ".") || strings.HasSuffix(v, ".") || strings.Contains(v, "..") {
			return fmt.Errorf("%q is not a subject prefix", v)
		}
		t.Prefix = v
	case "max_age":
		t.MaxAge, err = nonNegDuration(v)
	case "duplicates":
		t.Duplicates, err = nonNegDuration(v)
	case "max_bytes":
		t.MaxBytes, err = strconv.ParseInt(v, 10, 64)
		if err == nil && t.MaxBytes < 0 {
			err = fmt.Errorf("must be >= 0, got %d", t.MaxBytes)
		}
	case "buffer":
		t.Buffer, err = positive(v)
	case "inflight":
		t.InFlight, err = positive(v)
	case "creds":
		t.Creds = v
	case "nkey":
		t.NKey = v
	case "ca":
		t.CA = v
	case "cert":
		t.Cert = v
	case "key":
		t.Key = v
	default:
		return errors.New("unknown parameter (want stream, subject, max_age, max_bytes, duplicates, buffer, inflight, creds, nkey, ca, cert or key)")
	}
	return err
}

func nonNegDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = fmt.Errorf("must be >= 0, got %s", d)
	}
	return d, err
}

func positive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && (n <= 0 || n > 1<<24) {
		err = fmt.Errorf("must be between 1 and %d, got %d", 1<<24, n)
	}
	return n, err
}

// options are the nats.go connection options of t: credentials, TLS, and
// reconnecting forever, because a capture node outlives NATS restarts.
func (t Target) options(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
	}
	if t.Creds != "" {
		opts = append(opts, nats.UserCredentials(t.Creds))
	}
	if t.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(t.NKey)
		if err != nil {
			return nil, fmt.Errorf("nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if t.CA != "" || t.Cert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.CA != "" {
			pem, err := os.ReadFile(t.CA)
			if err != nil {
				return nil, fmt.Errorf("ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca: no certificate in %s", t.CA)
			}
		}
		if t.Cert != "" {
			c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		opts = append(opts, nats.Secure(cfg))
	}
	return opts, nil
}
