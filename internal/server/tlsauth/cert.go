package tlsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// certLifetime is long because clients pin the fingerprint: a rotation
// breaks every pinned client, so it should only happen when someone asks.
const certLifetime = 10 * 365 * 24 * time.Hour

// LoadOrCreateCert returns the server certificate kept in dir, generating a
// self-signed ECDSA P-256 one on first use, or when the stored one has
// expired or is unreadable.
func LoadOrCreateCert(dir string) (tls.Certificate, error) {
	if err := ensureDir(dir); err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := readSecret(dir, CertFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsauth: read certificate: %w", err)
	}
	keyPEM, err := readSecret(dir, KeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsauth: read key: %w", err)
	}
	if certPEM != nil && keyPEM != nil {
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err == nil && time.Now().Before(c.Leaf.NotAfter) {
			return c, nil
		}
	}
	certPEM, keyPEM, err = SelfSigned(time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	// Key first: a certificate without its key is useless, the reverse is
	// regenerated on the next run.
	if err := writeSecret(dir, KeyFile, keyPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsauth: write key: %w", err)
	}
	if err := writeSecret(dir, CertFile, certPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsauth: write certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// SelfSigned returns a PEM certificate and PKCS#8 key for 127.0.0.1, ::1
// and localhost, valid from now.
func SelfSigned(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tlstap", Organization: []string{"tlstap"}},
		NotBefore:             now.Add(-time.Hour), // tolerate clock skew
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // lets clients use the file itself as --ca
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
}

// Fingerprint is the SHA-256 of a DER certificate.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of a DER certificate.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String formats f as colon-separated upper-case hex pairs.
func (f Fingerprint) String() string {
	var b strings.Builder
	b.Grow(len(f) * 3)
	for i, c := range f {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// ParseFingerprint accepts hex with or without colons (or spaces), any
// case, optionally prefixed by "sha256:" or "SHA256=".
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	t := strings.TrimSpace(s)
	for _, p := range []string{"sha256:", "sha256=", "sha256 fingerprint="} {
		if len(t) >= len(p) && strings.EqualFold(t[:len(p)], p) {
			t = t[len(p):]
			break
		}
	}
	t = strings.NewReplacer(":", "", " ", "", "-", "").Replace(t)
	if len(t) != 2*len(f) {
		return f, fmt.Errorf("tlsauth: fingerprint %q: want %d hex digits, have %d", s, 2*len(f), len(t))
	}
	if _, err := hex.Decode(f[:], []byte(t)); err != nil {
		return f, fmt.Errorf("tlsauth: fingerprint %q: %w", s, err)
	}
	return f, nil
}

// ErrFingerprint is returned when a server presents a certificate whose
// fingerprint is not the pinned one.
var ErrFingerprint = errors.New("tlsauth: server certificate fingerprint mismatch")

// PinnedConfig returns a client TLS config that accepts exactly the
// certificate with fingerprint pin, whatever its names or issuer: pinning
// replaces chain verification, which a self-signed certificate cannot pass.
func PinnedConfig(pin Fingerprint) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprint
			}
			got := FingerprintOf(cs.PeerCertificates[0].Raw)
			if got != pin {
				return fmt.Errorf("%w: got %s, want %s", ErrFingerprint, got, pin)
			}
			return nil
		},
	}
}

// CertFingerprint returns the fingerprint of c's leaf certificate.
func CertFingerprint(c tls.Certificate) Fingerprint {
	if len(c.Certificate) == 0 {
		return Fingerprint{}
	}
	return FingerprintOf(c.Certificate[0])
}

// FileFingerprint returns the fingerprint of the first certificate in a
// PEM file, such as the server's CertFile.
func FileFingerprint(path string) (Fingerprint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Fingerprint{}, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return Fingerprint{}, fmt.Errorf("tlsauth: %s: no PEM certificate", path)
		}
		if blk.Type == "CERTIFICATE" {
			return FingerprintOf(blk.Bytes), nil
		}
	}
}
