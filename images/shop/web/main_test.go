package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeAPI keeps items as the API does, in memory.
func fakeAPI(t *testing.T) *httptest.Server {
	var (
		mu    sync.Mutex
		items = []item{}
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/items", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"pod": "api-x", "items": items})
	})
	mux.HandleFunc("POST /api/items", func(w http.ResponseWriter, r *http.Request) {
		var it item
		if json.NewDecoder(r.Body).Decode(&it) != nil || it.Name == "" {
			http.Error(w, "no name", http.StatusBadRequest)
			return
		}
		mu.Lock()
		items = append(items, it)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestPage(t *testing.T) {
	api := fakeAPI(t)
	web := httptest.NewServer(newHandler(view{Banner: "Berth Shop", Version: "2", Pod: "web-a"}, api.URL+"/"))
	defer web.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noRedirect.PostForm(web.URL+"/items", url.Values{"name": {"<script>tea</script>"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /items: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, err = noRedirect.PostForm(web.URL+"/items", url.Values{"name": {""}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /items with no name: %s, want the API's 400", resp.Status)
	}

	code, body := get(t, web.URL+"/")
	for _, want := range []string{"<h1>Berth Shop</h1>", "version 2 · page from web-a · items from api-x", "<li>&lt;script&gt;tea&lt;/script&gt;</li>"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET / = %d without %q:\n%s", code, want, body)
		}
	}

	// The API gone: the page says so, with a 502.
	api.Close()
	if code, body := get(t, web.URL+"/"); code != http.StatusBadGateway || !strings.Contains(body, "The API did not answer") {
		t.Errorf("GET / without the API = %d:\n%s", code, body)
	}
	if code, _ := get(t, web.URL+"/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
