package tlsauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside the state directory.
const (
	CertFile  = "server.crt"
	KeyFile   = "server.key"
	TokenFile = "token"
)

// DefaultStateDir is /var/lib/tlstap when running as root, else
// $XDG_CONFIG_HOME/tlstap (os.UserConfigDir). It returns "" if neither can
// be determined.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/tlstap"
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "tlstap")
}

// ensureDir creates dir with mode 0700. An existing directory that others
// can read or write is tightened rather than trusted as is: it holds the
// private key and the token.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("tlsauth: no state directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsauth: state directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("tlsauth: state directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("tlsauth: state directory: %w", err)
		}
	}
	return nil
}

// writeSecret writes data to dir/name with mode 0600, atomically: a crash
// never leaves a half-written key or token behind.
func writeSecret(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// readSecret reads dir/name; a missing file is (nil, nil).
func readSecret(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
