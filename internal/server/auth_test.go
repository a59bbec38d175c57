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
