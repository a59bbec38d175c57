package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
)

// TestUnauthorizedIsJSON: a 401 has the API's JSON error body.
func TestUnauthorizedIsJSON(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	ts.Handle("GET /api/v1/x", http.NotFoundHandler(), true)
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/api/v1/x", "/ws", "/api/v1/x?token=wrong-token-wrong-token"} {
		resp, err := hc.Get("https://" + ts.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "valid token is required") {
			t.Errorf("%s: %d %s %q, want a 401 with a JSON error", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

func TestAuth(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	tests := []struct {
		name  string
		query string
		hdr   http.Header
		want  int
	}{
		{"no token", "", http.Header{"Authorization": nil}, http.StatusUnauthorized},
		{"wrong bearer", "", http.Header{"Authorization": {"Bearer " + strings.Repeat("x", 43)}}, http.StatusUnauthorized},
		{"wrong query token", "token=nope", http.Header{"Authorization": nil}, http.StatusUnauthorized},
		{"token prefix", "token=" + ts.token[:20], http.Header{"Authorization": nil}, http.StatusUnauthorized},
		{"basic scheme", "", http.Header{"Authorization": {"Basic " + ts.token}}, http.StatusUnauthorized},
		{"bearer", "", nil, http.StatusSwitchingProtocols},
		{"bearer lower-case scheme", "", http.Header{"Authorization": {"bearer " + ts.token}}, http.StatusSwitchingProtocols},
		{"query token", "token=" + ts.token, http.Header{"Authorization": nil}, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := ts.dial(t, tt.query, tt.hdr)
			if c != nil {
				c.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (err %v)", resp.StatusCode, tt.want, err)
			}
		})
	}
	if got := ts.st.Value("tlstap_server_rejected_total", "reason", "unauthorized"); got != 5 {
		t.Errorf("rejected{unauthorized} = %v, want 5", got)
	}
}
