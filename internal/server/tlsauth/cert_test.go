package tlsauth

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFingerprintRoundTrip(t *testing.T) {
	certPEM, _, err := SelfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	fp := FingerprintOf(blk.Bytes)
	s := fp.String()
	if len(s) != 95 || strings.ToUpper(s) != s || strings.Count(s, ":") != 31 {
		t.Fatalf("String() = %q, want 32 upper-case hex pairs joined by colons", s)
	}
	plain := strings.ReplaceAll(s, ":", "")
	for _, in := range []string{s, strings.ToLower(s), plain, "sha256:" + plain, "SHA256=" + s, " " + s + "\n", "SHA256 Fingerprint=" + s} {
		got, err := ParseFingerprint(in)
		if err != nil || got != fp {
			t.Errorf("ParseFingerprint(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", plain[:62], plain + "00", strings.Replace(plain, plain[:1], "g", 1), "md5:" + plain} {
		if _, err := ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) succeeded", bad)
		}
	}
}

func TestSelfSigned(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, err := SelfSigned(now)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := c.VerifyHostname(host); err != nil {
			t.Errorf("not valid for %s: %v", host, err)
		}
	}
	if err := c.VerifyHostname("example.com"); err == nil {
		t.Error("valid for example.com")
	}
	if c.PublicKeyAlgorithm != x509.ECDSA || !c.NotAfter.After(now.Add(365*24*time.Hour)) {
		t.Errorf("key %v, not after %v", c.PublicKeyAlgorithm, c.NotAfter)
	}
	if kb, _ := pem.Decode(keyPEM); kb == nil || kb.Type != "PRIVATE KEY" {
		t.Error("key is not a PKCS#8 PEM block")
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	c1, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if CertFingerprint(c1) != CertFingerprint(c2) {
		t.Error("certificate regenerated on second load")
	}
	t1, err := LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := LoadOrCreateToken(dir)
	if err != nil || t1 != t2 {
		t.Fatalf("token changed: %q %q %v", t1, t2, err)
	}
	if t3, err := ReadToken(dir); err != nil || t3 != t1 {
		t.Fatalf("ReadToken = %q, %v", t3, err)
	}
	if _, err := ReadToken(t.TempDir()); err == nil {
		t.Error("ReadToken of an empty dir succeeded")
	}
	// A damaged certificate is replaced, not trusted or fatal.
	if err := os.WriteFile(filepath.Join(dir, CertFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c3, err := LoadOrCreateCert(dir)
	if err != nil || CertFingerprint(c3) == CertFingerprint(c1) {
		t.Fatalf("damaged certificate: %v", err)
	}
	// A directory others can read is tightened.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, f := range []string{CertFile, KeyFile, TokenFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", f, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// FuzzParseFingerprint: user-supplied pins never panic, and whatever
// parses formats back to something that parses to the same value.
func FuzzParseFingerprint(f *testing.F) {
	f.Add("4F:73:F4:3E:0C:7C:95:8C:EE:3C:B0:14:AD:A4:C8:DD:C5:C0:99:62:8E:E1:54:2D:26:2D:99:6D:BE:C5:7B:3D")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		again, err := ParseFingerprint(fp.String())
		if err != nil || again != fp {
			t.Fatalf("%q -> %s does not round-trip: %v", s, fp, err)
		}
		if again, err := ParseFingerprint(strings.ToLower(strings.ReplaceAll(fp.String(), ":", ""))); err != nil || again != fp {
			t.Fatalf("plain form of %s: %v", fp, err)
		}
	})
}
