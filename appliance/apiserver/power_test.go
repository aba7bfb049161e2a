package apiserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/reconcile"
)

// The appliance's reboot/poweroff routes exist only when a Power hook is
// given, take the admin token, and report the host's storage in status.
func TestPowerAndHost(t *testing.T) {
	b := newBackend(t)
	var got []string
	host := &api.HostStatus{Storage: "ram", Warning: "lost on reboot"}
	srv := httptest.NewServer(NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{},
		Host: host, Power: func(a string) error { got = append(got, a); return nil }}))
	defer srv.Close()
	post := func(path, tok string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("/v1/system/reboot", "wrong"); c != http.StatusUnauthorized {
		t.Fatalf("reboot with a wrong token: %d", c)
	}
	if c := post("/v1/system/halt", token); c != http.StatusNotFound {
		t.Fatalf("unknown action: %d", c)
	}
	if c := post("/v1/system/reboot", token); c != http.StatusOK {
		t.Fatalf("reboot: %d", c)
	}
	if c := post("/v1/system/poweroff", token); c != http.StatusOK {
		t.Fatalf("poweroff: %d", c)
	}
	if strings.Join(got, ",") != "reboot,poweroff" {
		t.Fatalf("hook calls: %v", got)
	}
	st, err := api.NewClient(srv.URL, token).Status(t.Context())
	if err != nil || st.Host == nil || st.Host.Storage != "ram" {
		t.Fatalf("status: %+v %v", st, err)
	}

	// Without the hook (a master not on the appliance image) there is no
	// such route.
	plain := httptest.NewServer(NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}}))
	defer plain.Close()
	srv.URL = plain.URL
	if c := post("/v1/system/reboot", token); c != http.StatusNotFound && c != http.StatusMethodNotAllowed {
		t.Fatalf("reboot without a hook: %d", c)
	}
}
