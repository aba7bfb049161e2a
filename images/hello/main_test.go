package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(newHandler("pod-a", "v2"))
	defer srv.Close()
	for path, want := range map[string]struct {
		code int
		body string
	}{
		"/":        {200, "pod-a v2\n"},
		"/client":  {200, "pod-a 127.0.0.1\n"},
		"/healthz": {200, "ok\n"},
		"/nope":    {404, ""},
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || (want.body != "" && string(b) != want.body) {
			t.Errorf("GET %s = %d %q, want %d %q", path, resp.StatusCode, b, want.code, want.body)
		}
	}
}
