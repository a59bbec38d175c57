package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/tlstap/tlstap/internal/server/tlsauth"
)

func TestFiltersEncode(t *testing.T) {
	f := Filters{PIDs: []int64{1, 2}, Pnames: []string{"curl"}, Types: []string{"raw", "4"}, Hosts: []string{"*.x.org"}, Ports: []uint16{443}, NoLogs: true}
	v := url.Values{"token": {"t"}}
	f.encode(v)
	if got, want := v.Encode(), "host=%2A.x.org&logs=0&pid=1&pid=2&pname=curl&port=443&token=t&type=raw&type=4"; got != want {
		t.Fatalf("encode = %s\nwant %s", got, want)
	}
	v = url.Values{}
	(&Filters{}).encode(v)
	if len(v) != 0 {
		t.Fatalf("empty filters encode to %v", v)
	}
}

func TestPermanent(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&StatusError{Code: 401}, true},
		{&StatusError{Code: 400}, true},
		{fmt.Errorf("wrapped: %w", &StatusError{Code: 403}), true},
		{&StatusError{Code: 429}, false},
		{&StatusError{Code: 503}, false},
		{fmt.Errorf("x: %w", tlsauth.ErrFingerprint), true},
		{&tls.CertificateVerificationError{Err: errors.New("x")}, true},
		{errors.New("connection refused"), false},
	} {
		if got := permanent(tt.err); got != tt.want {
			t.Errorf("permanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
