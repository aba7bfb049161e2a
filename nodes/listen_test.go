package nodes

import (
	"net"
	"strings"
	"testing"
)

func TestAgentAddrs(t *testing.T) {
	const local = "https://127.0.0.1:7443"
	for _, tc := range []struct {
		cfg               Config
		listen, advertise string
		err               string
	}{
		// By default the API listens only where the masters reach it.
		{Config{Server: local}, "127.0.0.1:10250", "127.0.0.1:10250", ""},
		{Config{Server: local + ",https://192.0.2.1:7443"}, "127.0.0.1:10250", "127.0.0.1:10250", ""},
		{Config{Server: local, Advertise: "192.0.2.5:10250"}, "192.0.2.5:10250", "192.0.2.5:10250", ""},
		{Config{Server: local, Advertise: "[2001:db8::5]:10250"}, "[2001:db8::5]:10250", "[2001:db8::5]:10250", ""},
		// Anywhere else only when asked.
		{Config{Server: local, Advertise: "192.0.2.5:10250", Listen: "0.0.0.0:10250"}, "0.0.0.0:10250", "192.0.2.5:10250", ""},
		{Config{Server: local, Listen: "0.0.0.0:10250"}, "0.0.0.0:10250", "", ""},
		{Config{Server: local, Advertise: "192.0.2.5"}, "", "", "want HOST:PORT"},
		{Config{}, "", "", "names no host"},
		{Config{Server: "not a url"}, "", "", "names no host"},
	} {
		listen, advertise, err := agentAddrs(tc.cfg)
		if listen != tc.listen || advertise != tc.advertise || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %q %q %v, want %q %q %q", tc.cfg, listen, advertise, err, tc.listen, tc.advertise, tc.err)
		}
	}
}

// TestListenAgent: real listeners. The default binds the advertised
// address and no other; an explicit 0.0.0.0 binds every interface and
// advertises this node's address with the port it got.
func TestListenAgent(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	ln, advertise, err := listenAgent(Config{Server: "https://127.0.0.1:7443", Advertise: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != addr || advertise != addr {
		t.Fatalf("listening on %s, advertising %s; want both %s", ln.Addr(), advertise, addr)
	}
	_, port, _ := net.SplitHostPort(addr)
	if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
		c.Close()
		t.Fatalf("the API answers on 127.0.0.1:%s too, not only on its advertised %s", port, addr)
	}

	all, advertise, err := listenAgent(Config{Server: "https://127.0.0.1:7443", Listen: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	host, port, _ := net.SplitHostPort(all.Addr().String())
	if !net.ParseIP(host).IsUnspecified() || advertise != "127.0.0.1:"+port {
		t.Fatalf("listening on %s, advertising %s; want every interface, and 127.0.0.1:%s", all.Addr(), advertise, port)
	}
}
