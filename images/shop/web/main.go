// Command web is the shop example's front end (examples/shop): an HTML
// page of the items the API at API_URL (a Service name, http://api:8080)
// keeps, a form that adds one, and BANNER and VERSION on top so a rolling
// update shows.
//
//	GET  /         the page (502 with the reason when the API fails)
//	POST /items    form field name: adds an item through the API, then
//	               redirects to / (303); the API's 4xx as is, else 502
//	GET  /healthz  200 while the process serves
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth/berth/images/internal/serve"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Banner}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}.meta{color:#666}.error{color:#b00}</style></head>
<body>
<h1>{{.Banner}}</h1>
<p class="meta">version {{.Version}} · page from {{.Pod}}{{with .APIPod}} · items from {{.}}{{end}}</p>
{{with .Error}}<p class="error">{{.}}</p>{{end}}
<ul>
{{range .Items}}<li>{{.Name}}</li>
{{else}}<li><em>no items yet</em></li>
{{end}}</ul>
<form method="post" action="/items"><input name="name" maxlength="200" required> <button>Add</button></form>
</body>
</html>
`))

type item struct {
	Name string `json:"name"`
}

type view struct {
	Banner, Version, Pod string
	APIPod               string
	Items                []item
	Error                string
}

func main() {
	api := os.Getenv("API_URL")
	if api == "" {
		slog.Error("web: API_URL is not set")
		os.Exit(1)
	}
	v := view{Banner: os.Getenv("BANNER"), Version: os.Getenv("VERSION"), Pod: serve.PodName()}
	if v.Banner == "" {
		v.Banner = "Shop"
	}
	serve.Run("web", newHandler(v, api), "name", v.Pod, "version", v.Version, "api", api)
}

func newHandler(base view, api string) http.Handler {
	api = strings.TrimSuffix(api, "/")
	client := &http.Client{Timeout: 3 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		v := base
		code := http.StatusOK
		if err := getItems(r, client, api, &v); err != nil {
			slog.Warn("web: api", "err", err)
			v.Error, code = "The API did not answer: "+err.Error(), http.StatusBadGateway
		}
		var b bytes.Buffer
		if err := page.Execute(&b, v); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		w.Write(b.Bytes())
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(item{Name: r.FormValue("name")})
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, api+"/api/items", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			slog.Warn("web: api", "err", err)
			http.Error(w, "the API did not answer: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			// The user's mistakes (4xx) are theirs to see as such.
			code := http.StatusBadGateway
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				code = resp.StatusCode
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			http.Error(w, fmt.Sprintf("the API answered %s: %s", resp.Status, bytes.TrimSpace(msg)), code)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// getItems fills v with the API's items and the pod that listed them.
func getItems(r *http.Request, client *http.Client, api string, v *view) error {
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, api+"/api/items", nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	var l struct {
		Pod   string `json:"pod"`
		Items []item `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return err
	}
	v.APIPod, v.Items = l.Pod, l.Items
	return nil
}
