package gitops

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// serveHTTP serves the upstream's parent directory with git http-backend
// (smart HTTP, as a real Git server speaks it) behind basic auth.
func serveHTTP(t *testing.T, up *upstream, user, pass string) string {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("no git-http-backend: %v", err)
	}
	h := &cgi.Handler{
		Path: backend,
		Root: "/git",
		Env: slices.Concat(up.env, []string{"GIT_PROJECT_ROOT=" + filepath.Dir(up.dir), "GIT_HTTP_EXPORT_ALL=1",
			// The CGI may run as another user than the repo's owner,
			// which git refuses unless told otherwise.
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*"}),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/git/" + filepath.Base(up.dir)
}

func TestHTTPSource(t *testing.T) {
	up := newUpstream(t, "trunk")
	up.copyExample("")
	c1 := up.commit("one")
	url := serveHTTP(t, up, "berth", "s3cret")

	// Without credentials the server refuses, and says so.
	s, fs := newTestSyncer(t, url)
	if err := s.sync(ctxT(t)); err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Fatalf("no auth: err = %v", err)
	}

	s, fs = newTestSyncer(t, url, WithAuth("berth", "s3cret"))
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if fs.lastCommit() != c1 || s.Status().Branch != "trunk" || len(fs.revisions()[0].Objects) != 4 {
		t.Fatalf("http: %+v / %+v", summary(fs.snapshot()), s.Status())
	}
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("two")
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if fs.lastCommit() != c2 {
		t.Fatalf("incremental http fetch: last %s, want %s", fs.lastCommit(), c2)
	}

	// Credentials in the URL are used but never shown.
	withCreds := strings.Replace(url, "http://", "http://berth:s3cret@", 1)
	s, _ = newTestSyncer(t, withCreds)
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); strings.Contains(st.URL, "s3cret") {
		t.Errorf("status shows the password: %s", st.URL)
	}
}
