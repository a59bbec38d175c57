package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/tlstap/tlstap/internal/config"
)

// ConfigBody is the representation of GET, PUT and PATCH /api/v1/config.
type ConfigBody struct {
	Revision uint64        `json:"revision"`
	Config   config.Config `json:"config"`
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

func writeConfig(w http.ResponseWriter, c config.Config, rev uint64) {
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, ConfigBody{Revision: rev, Config: c})
}

func (a *API) getConfig(w http.ResponseWriter, _ *http.Request) {
	c, rev := a.Config()
	writeConfig(w, c, rev)
}

func (a *API) putConfig(w http.ResponseWriter, r *http.Request) {
	a.change(w, r, []string{typeJSON}, func(_ config.Config, body []byte) (config.Config, error) {
		return config.Parse(body)
	})
}

func (a *API) patchConfig(w http.ResponseWriter, r *http.Request) {
	a.change(w, r, []string{typeMergePatch, typeJSON}, config.Patch)
}

func (a *API) change(w http.ResponseWriter, r *http.Request, types []string, next func(config.Config, []byte) (config.Config, error)) {
	match, cerr := ifMatch(r)
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	body, cerr := readBody(w, r, types...)
	if cerr != nil {
		writeError(w, cerr)
		return
	}
	c, rev, err := a.update(r.Context(), who(r), match, func(cur config.Config) (config.Config, error) {
		return next(cur, body)
	})
	if err != nil {
		var ce *commitError
		if !errors.As(err, &ce) {
			ce = &commitError{status: http.StatusInternalServerError, msg: err.Error()}
		}
		writeError(w, ce)
		return
	}
	writeConfig(w, c, rev)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok"))
}
