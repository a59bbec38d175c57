package server

import (
	"io"
	"net/http"

	"github.com/tlstap/tlstap/internal/server/tlsauth"
	"github.com/tlstap/tlstap/internal/stats"
)

// unauthorizedBody is the 401's body, in the API's error format.
const unauthorizedBody = `{"error": "401 unauthorized: a valid token is required (Authorization: Bearer TOKEN or ?token=TOKEN)"}` + "\n"

// RequireToken returns a handler that serves next only for requests that
// present the token, as "Authorization: Bearer TOKEN" or "?token=TOKEN";
// others get 401. A nil checker lets every request through (auth none).
// st may be nil.
func RequireToken(c *tlsauth.Checker, st *stats.Set, next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	var rejected *stats.Counter
	if st != nil {
		rejected = st.Counter(rejectedTotal, rejectedHelp, "reason", "unauthorized")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.Valid(tlsauth.RequestToken(r)) {
			if rejected != nil {
				rejected.Inc()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tlstap"`)
			// JSON like every other API error; a WebSocket client only
			// looks at the status.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, unauthorizedBody)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Auth wraps h in the server's token check (nothing with auth none), for
// handlers mounted elsewhere.
func (s *Server) Auth(h http.Handler) http.Handler {
	return RequireToken(s.checker, s.stats, h)
}
