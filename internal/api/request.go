package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tlstap/tlstap/internal/config"
)

// Media types a mutating request may carry.
const (
	typeJSON       = "application/json"
	typeMergePatch = "application/merge-patch+json"
)

// readBody checks the content type against allowed and reads the body,
// at most MaxBody bytes. A form or text/plain body, which any web page can
// send without asking, is refused with 415.
func readBody(w http.ResponseWriter, r *http.Request, allowed ...string) ([]byte, *commitError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(allowed, mt) {
		return nil, &commitError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Type must be %s", strings.Join(allowed, " or "))}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &commitError{status: http.StatusUnsupportedMediaType, msg: "charset must be utf-8"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &commitError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body larger than %d bytes", MaxBody)}
		}
		return nil, &commitError{status: http.StatusBadRequest, msg: "reading body: " + err.Error()}
	}
	return body, nil
}

// ifMatch parses If-Match: absent accepts any revision; otherwise one of
// its entity tags, quoted or not ("3", 3, W/"3") or *, must match.
func ifMatch(r *http.Request) (func(uint64) bool, *commitError) {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return nil, nil
	}
	var revs []uint64
	for _, v := range vals {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				return func(uint64) bool { return true }, nil
			}
			tag = strings.TrimPrefix(tag, "W/")
			if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
				tag = tag[1 : len(tag)-1]
			}
			n, err := strconv.ParseUint(tag, 10, 64)
			if err != nil {
				return nil, &commitError{status: http.StatusBadRequest, msg: fmt.Sprintf("If-Match: %q is not a revision", tag)}
			}
			revs = append(revs, n)
		}
	}
	return func(cur uint64) bool { return slices.Contains(revs, cur) }, nil
}

// errorBody is every error's JSON body.
type errorBody struct {
	Error  string              `json:"error"`
	Fields []config.FieldError `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, e *commitError) {
	writeJSON(w, e.status, errorBody{Error: e.msg, Fields: e.fields})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", typeJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// who names the requester in the change log.
func who(r *http.Request) string { return r.RemoteAddr }
