// Package ui is the dashboard the masters serve at /ui: server-rendered
// html/template pages from files embedded in the binary, kept live by
// server-sent events that re-render a page's sections after each change
// of the state (the API's blocking queries). It reads everything through
// the API handler in this process with the signed-in person's token, so
// the API's authentication and access policies are the dashboard's too:
// a read-only token sees no secret's value here either. See
// docs/dashboard.md.
package ui

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/names"
)

//go:embed templates assets
var files embed.FS

// cookieName holds the signed-in person's API token.
const cookieName = "berth_token"

// keepalive is how long a live page's stream may stay silent: a comment
// goes out then, within the server's write timeout and any proxy's idle
// timeout.
const keepalive = 25 * time.Second

// minRender spaces the re-renders of a live page: a burst of changes (a
// rollout) makes a few updates a second, not one per Raft entry.
const minRender = 300 * time.Millisecond

// UI serves the dashboard.
type UI struct {
	api  http.Handler
	http *http.Client
	log  *slog.Logger
	tmpl *template.Template
	mux  *http.ServeMux
}

// New returns the dashboard's handler for paths under /ui/, reading
// through apiHandler (the masters' API).
func New(apiHandler http.Handler, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UI{api: apiHandler, http: &http.Client{Transport: handlerTransport{apiHandler}}, log: log, mux: http.NewServeMux()}
	u.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))
	assets, _ := fs.Sub(files, "assets")
	u.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	u.mux.HandleFunc("GET /ui/{$}", u.session(u.dashboard))
	u.mux.HandleFunc("GET /ui/events", u.session(u.dashboardEvents))
	u.mux.HandleFunc("GET /ui/signin", u.signInPage)
	u.mux.HandleFunc("POST /ui/signin", u.signIn)
	u.mux.HandleFunc("POST /ui/signout", u.signOut)
	u.mux.HandleFunc("GET /ui/pods/{namespace}/{pod}", u.session(u.podPage))
	u.mux.HandleFunc("GET /ui/pods/{namespace}/{pod}/events", u.session(u.podEvents))
	u.mux.HandleFunc("GET /ui/pods/{namespace}/{pod}/log", u.session(u.podLog))
	// Forms are the only unsafe requests; CrossOriginProtection refuses
	// those another site's page makes (Sec-Fetch-Site, Origin), on top of
	// the SameSite=Strict cookie.
	return headers(http.NewCrossOriginProtection().Handler(u.mux))
}

// headers adds what every answer of the dashboard carries: a policy that
// runs no script but the dashboard's own files (no inline script or
// style, nothing from elsewhere), no framing, no sniffing, no referrer.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// authed is a handler of a signed-in page, with an API client carrying the
// person's token.
type authed func(w http.ResponseWriter, r *http.Request, c *api.Client)

// session sends a request with no token to the sign-in page; the API
// judges the token itself on every read.
func (u *UI) session(h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		if err != nil || ck.Value == "" {
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		h(w, r, u.client(ck.Value))
	}
}

func (u *UI) client(token string) *api.Client {
	// The host is never dialled: handlerTransport answers in process.
	return api.NewClient("http://api.invalid", token, api.WithHTTPClient(u.http))
}

// signedOut says whether the API refused the token (expired, revoked,
// not a reader's): the person must sign in again.
func signedOut(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && (e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden)
}

func (u *UI) render(w http.ResponseWriter, code int, name string, data any) {
	var b strings.Builder
	if err := u.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		u.log.Error("dashboard template", "template", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, b.String())
}

// failed answers a page whose reads failed: to sign in again, or with the
// API's error.
func (u *UI) failed(w http.ResponseWriter, r *http.Request, err error) {
	if signedOut(err) {
		clearCookie(w)
		u.render(w, http.StatusUnauthorized, "signin.html", signInData{Error: "Sign in again: " + apiMessage(err)})
		return
	}
	code := http.StatusBadGateway
	var e *api.Error
	if errors.As(err, &e) {
		code = e.Code
	}
	u.render(w, code, "error.html", apiMessage(err))
}

// apiMessage is what the API said, without the status line.
func apiMessage(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

type signInData struct{ Error string }

func (u *UI) signInPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, http.StatusOK, "signin.html", signInData{})
}

// signIn checks the token by reading the status with it, and keeps it in
// a cookie that scripts cannot read (HttpOnly), that goes over HTTPS only
// and never with another site's request.
func (u *UI) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		u.render(w, http.StatusBadRequest, "signin.html", signInData{Error: "The form could not be read."})
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		u.render(w, http.StatusBadRequest, "signin.html", signInData{Error: "Enter a token."})
		return
	}
	// Only a well-formed token goes into the cookie (and the error never
	// repeats the input, which may be a real token with a typo).
	if _, _, err := auth.Parse(token); err != nil {
		u.render(w, http.StatusBadRequest, "signin.html", signInData{Error: "That is not a berth token: tokens look like abcdef.0123456789abcdef (berth token create makes one)."})
		return
	}
	if _, err := u.client(token).Status(r.Context()); err != nil {
		code := http.StatusBadGateway
		var e *api.Error
		if errors.As(err, &e) {
			code = e.Code
		}
		u.render(w, code, "signin.html", signInData{Error: "The cluster refused this token: " + apiMessage(err)})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/ui/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (u *UI) signOut(w http.ResponseWriter, r *http.Request) {
	clearCookie(w)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, c *api.Client) {
	v, err := loadCluster(r.Context(), c)
	if err == nil {
		v.Me, err = c.WhoAmI(r.Context())
	}
	if err != nil {
		u.failed(w, r, err)
		return
	}
	u.render(w, http.StatusOK, "dashboard.html", v)
}

func (u *UI) dashboardEvents(w http.ResponseWriter, r *http.Request, c *api.Client) {
	u.live(w, r, c, dashboardSections, func(ctx context.Context) (any, error) { return loadCluster(ctx, c) })
}

// podRef reads a pod page's path, checked as the API checks names.
func podRef(r *http.Request) (namespace, pod string, err error) {
	namespace, pod = r.PathValue("namespace"), r.PathValue("pod")
	if err := names.DNSLabel(namespace); err != nil {
		return "", "", fmt.Errorf("the namespace %w", err)
	}
	if err := names.DNSSubdomain(pod); err != nil {
		return "", "", fmt.Errorf("the pod name %w", err)
	}
	return namespace, pod, nil
}

func (u *UI) podPage(w http.ResponseWriter, r *http.Request, c *api.Client) {
	ns, name, err := podRef(r)
	if err != nil {
		u.render(w, http.StatusBadRequest, "error.html", err.Error())
		return
	}
	v, err := loadPod(r.Context(), c, ns, name)
	if err == nil {
		v.Me, err = c.WhoAmI(r.Context())
	}
	if err != nil {
		u.failed(w, r, err)
		return
	}
	if v.Pod == nil {
		u.render(w, http.StatusNotFound, "error.html", fmt.Sprintf("There is no pod %s/%s (any more).", ns, name))
		return
	}
	container, err := v.Pod.LogContainer(r.URL.Query().Get("container"))
	if err != nil {
		u.render(w, http.StatusBadRequest, "error.html", err.Error())
		return
	}
	v.Container = container
	u.render(w, http.StatusOK, "pod.html", v)
}

func (u *UI) podEvents(w http.ResponseWriter, r *http.Request, c *api.Client) {
	ns, name, err := podRef(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.live(w, r, c, podSections, func(ctx context.Context) (any, error) { return loadPod(ctx, c, ns, name) })
}

// sse writes server-sent events, flushing each.
type sse struct {
	w  io.Writer
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	s := sse{w: w, rc: http.NewResponseController(w)}
	s.rc.Flush()
	return s
}

// send writes one event; data's line breaks become the event's lines
// (a CR, which would also end a line, as a character reference: data is
// HTML or a log line shown as text).
func (s sse) send(event, data string) error {
	var b strings.Builder
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	for line := range strings.SplitSeq(strings.ReplaceAll(data, "\r", "&#13;"), "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s sse) comment() error {
	if _, err := io.WriteString(s.w, ": keepalive\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// live streams a page's sections (templates by name) rendered from load's
// data, after every change of the state: it waits on the API's status as
// a blocking query, which answers at each new Raft index, and sends the
// sections whose HTML changed as events named by section.
func (u *UI) live(w http.ResponseWriter, r *http.Request, c *api.Client, sections []string, load func(context.Context) (any, error)) {
	sw, end := httpserve.Stream(w, r)
	defer end()
	ctx := r.Context()
	out := startSSE(sw)
	sent := map[string]string{}
	var index uint64
	for {
		_, idx, err := c.WatchStatus(ctx, &api.Watch{Index: index, Wait: keepalive})
		if err == nil && idx == index {
			err = out.comment()
		} else if err == nil {
			index = idx
			err = u.sendSections(ctx, out, sections, sent, load)
		}
		switch {
		case ctx.Err() != nil:
			return
		case signedOut(err):
			out.send("signedout", apiMessage(err))
			return
		case err != nil:
			// The page says it is not live; EventSource reconnects.
			out.send("trouble", apiMessage(err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(minRender):
		}
	}
}

func (u *UI) sendSections(ctx context.Context, out sse, sections []string, sent map[string]string, load func(context.Context) (any, error)) error {
	v, err := load(ctx)
	if err != nil {
		return err
	}
	for _, name := range sections {
		var b strings.Builder
		if err := u.tmpl.ExecuteTemplate(&b, name, v); err != nil {
			return fmt.Errorf("rendering %s: %w", name, err)
		}
		if sent[name] == b.String() {
			continue
		}
		if err := out.send(name, b.String()); err != nil {
			return err
		}
		sent[name] = b.String()
	}
	return nil
}

// maxLogLine bounds one event of a log: a longer line goes out in parts.
const maxLogLine = 16 << 10

// podLog streams a container's log (followed) as events, one per line,
// which the page appends as text. It ends with an "end" event when the
// container is gone, or "trouble" with what the API said.
func (u *UI) podLog(w http.ResponseWriter, r *http.Request, c *api.Client) {
	ns, name, err := podRef(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	container := r.URL.Query().Get("container")
	if container != "" {
		if err := names.DNSLabel(container); err != nil {
			http.Error(w, "the container name "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	sw, end := httpserve.Stream(w, r)
	defer end()
	out := startSSE(sw)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := c.Logs(r.Context(), ns, name, container, true, pw)
		pw.Close()
		done <- err
	}()
	br := bufio.NewReaderSize(pr, maxLogLine)
	for {
		line, _, err := br.ReadLine()
		if err != nil {
			break
		}
		if out.send("", strings.ReplaceAll(string(line), "\r", "")) != nil {
			pr.CloseWithError(errors.New("the page went away"))
			break
		}
	}
	if err := <-done; err != nil {
		if signedOut(err) {
			out.send("signedout", apiMessage(err))
			return
		}
		out.send("trouble", apiMessage(err))
		return
	}
	out.send("end", "the log ended: the container stopped")
}

// podView is what a pod's page shows.
type podView struct {
	Pod       *state.Pod
	Node      *state.Node
	Container string
	// Events are the pod's, oldest first (as describe lists them); they
	// stay listed when the pod is gone.
	Events []state.Event
	// Me is who is signed in.
	Me api.WhoAmI
}

func loadPod(ctx context.Context, c *api.Client, namespace, name string) (*podView, error) {
	pods, _, err := c.Pods(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	v := &podView{}
	for i := range pods {
		if pods[i].Namespace == namespace && pods[i].Name == name {
			v.Pod = &pods[i]
		}
	}
	if v.Events, _, err = c.Events(ctx, api.EventFilter{Namespace: namespace, Kind: "Pod", Name: name}, nil); err != nil {
		return nil, err
	}
	if v.Pod == nil || v.Pod.NodeName == "" {
		return v, nil
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	for i := range nodes {
		if nodes[i].Name == v.Pod.NodeName {
			v.Node = &nodes[i]
		}
	}
	return v, nil
}
