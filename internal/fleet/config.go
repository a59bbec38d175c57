package fleet

import "github.com/tlstap/tlstap/internal/config"

// config checks every sink address, but the nats:// and tls:// syntax
// is this package's (ParseURL): register it, so that a bad address is
// refused when settings are validated, before anything starts.
func init() {
	config.RegisterNATS(func(addr string) (string, error) {
		t, err := ParseURL(addr)
		return t.Server, err
	})
}
