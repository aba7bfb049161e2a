package pki

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake between server and client over loopback
// TCP, then one byte from server to client so that a client certificate
// the server refuses after the client's side of the TLS 1.3 handshake is
// done still shows up as a client error. It returns the server's view of
// the connection.
func handshake(t *testing.T, server, client *tls.Config) (state tls.ConnectionState, clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		_, err = tc.Write([]byte{1})
		done <- result{tc.ConnectionState(), err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	client = client.Clone()
	client.ServerName = "127.0.0.1"
	tc := tls.Client(c, client)
	clientErr = tc.Handshake()
	if clientErr == nil {
		_, clientErr = tc.Read(make([]byte, 1))
	}
	c.Close()
	r := <-done
	return r.state, clientErr, r.err
}

type master struct{ certPEM, keyPEM []byte }

func newMaster(t *testing.T, ca *CA) master {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueServer("master-1", []string{OrgMasters}, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return master{certPEM, keyPEM}
}

func newAgent(t *testing.T, ca *CA, name string) master {
	t.Helper()
	keyPEM, csrPEM, err := NewKeyAndCSR(name)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrPEM, name, []string{OrgNodes}, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return master{certPEM, keyPEM}
}

// expired is a certificate from ca that expired an hour ago.
func expired(t *testing.T, ca *CA, usage x509.ExtKeyUsage) master {
	t.Helper()
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	serial, err := newSerial()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "old"},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     time.Now().Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return master{encodeCert(der), keyPEM}
}

// must(t)(ServerTLS(...)) fails the test on the constructor's error.
func must(t *testing.T) func(*tls.Config, error) *tls.Config {
	return func(cfg *tls.Config, err error) *tls.Config {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
}

func wantRefused(t *testing.T, what string, clientErr, serverErr error, wantInClient string) {
	t.Helper()
	if clientErr == nil || serverErr == nil {
		t.Fatalf("%s: client error %v, server error %v; want both to fail", what, clientErr, serverErr)
	}
	if !strings.Contains(clientErr.Error(), wantInClient) {
		t.Fatalf("%s: client error %q does not mention %q", what, clientErr, wantInClient)
	}
}

func TestServerAndClientTLS(t *testing.T) {
	ca := newCA(t, "berth-ca")
	m := newMaster(t, ca)
	server := must(t)(ServerTLS(ca.CertPEM, m.certPEM, m.keyPEM))

	t.Run("no client certificate", func(t *testing.T) {
		state, cerr, serr := handshake(t, server, must(t)(ClientTLS(ca.CertPEM, nil, nil, OrgMasters)))
		if cerr != nil || serr != nil {
			t.Fatal(cerr, serr)
		}
		if state.Version != tls.VersionTLS13 {
			t.Fatalf("version %x", state.Version)
		}
		if cn, orgs, ok := Identity(&state); ok || cn != "" || orgs != nil {
			t.Fatalf("Identity = %q %q %v without a client certificate", cn, orgs, ok)
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		a := newAgent(t, ca, "node-1")
		state, cerr, serr := handshake(t, server, must(t)(ClientTLS(ca.CertPEM, a.certPEM, a.keyPEM, OrgMasters)))
		if cerr != nil || serr != nil {
			t.Fatal(cerr, serr)
		}
		cn, orgs, ok := Identity(&state)
		if !ok || cn != "node-1" || !slices.Equal(orgs, []string{OrgNodes}) {
			t.Fatalf("Identity = %q %q %v", cn, orgs, ok)
		}
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		// Go's client sends a certificate only if its issuer's name is
		// among the server's acceptable CAs: under another name it
		// connects anonymously, under the same name the server refuses.
		a := newAgent(t, newCA(t, "other"), "node-1")
		state, cerr, serr := handshake(t, server, must(t)(ClientTLS(ca.CertPEM, a.certPEM, a.keyPEM, OrgMasters)))
		if cerr != nil || serr != nil {
			t.Fatal(cerr, serr)
		}
		if _, _, ok := Identity(&state); ok {
			t.Fatal("foreign client certificate gave an identity")
		}
		a = newAgent(t, newCA(t, "berth-ca"), "node-1")
		_, cerr, serr = handshake(t, server, must(t)(ClientTLS(ca.CertPEM, a.certPEM, a.keyPEM, OrgMasters)))
		wantRefused(t, "foreign client", cerr, serr, "certificate")
	})
	t.Run("expired client certificate", func(t *testing.T) {
		a := expired(t, ca, x509.ExtKeyUsageClientAuth)
		_, cerr, serr := handshake(t, server, must(t)(ClientTLS(ca.CertPEM, a.certPEM, a.keyPEM, OrgMasters)))
		wantRefused(t, "expired client", cerr, serr, "expired")
	})
	t.Run("server from another CA", func(t *testing.T) {
		_, cerr, serr := handshake(t, server, must(t)(ClientTLS(newCA(t, "other").CertPEM, nil, nil, OrgMasters)))
		wantRefused(t, "foreign server", cerr, serr, "unknown authority")
	})
	t.Run("expired server certificate", func(t *testing.T) {
		old := expired(t, ca, x509.ExtKeyUsageServerAuth)
		_, cerr, serr := handshake(t, must(t)(ServerTLS(ca.CertPEM, old.certPEM, old.keyPEM)), must(t)(ClientTLS(ca.CertPEM, nil, nil, OrgMasters)))
		wantRefused(t, "expired server", cerr, serr, "expired")
	})
	t.Run("agent posing as a master", func(t *testing.T) {
		// An agent's certificate is the CA's too, for host names the agent
		// chose: a client of masters must still refuse it, and a master
		// reaching that agent's endpoint accept it.
		a := newAgent(t, ca, "node-1")
		agentServer := must(t)(ServerTLS(ca.CertPEM, a.certPEM, a.keyPEM))
		_, cerr, serr := handshake(t, agentServer, must(t)(ClientTLS(ca.CertPEM, nil, nil, OrgMasters)))
		wantRefused(t, "agent as a master", cerr, serr, "is not one of berth:masters")
		if _, cerr, serr := handshake(t, agentServer, must(t)(ClientTLS(ca.CertPEM, m.certPEM, m.keyPEM, OrgNodes))); cerr != nil || serr != nil {
			t.Fatal("a master reaching an agent:", cerr, serr)
		}
	})
	t.Run("TLS 1.2 client", func(t *testing.T) {
		client := must(t)(ClientTLS(ca.CertPEM, nil, nil, OrgMasters))
		client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		_, cerr, serr := handshake(t, server, client)
		wantRefused(t, "TLS 1.2", cerr, serr, "version")
	})
	t.Run("bad inputs", func(t *testing.T) {
		if _, err := ServerTLS([]byte("junk"), m.certPEM, m.keyPEM); err == nil {
			t.Error("ServerTLS accepted a junk CA")
		}
		if _, err := ServerTLS(ca.CertPEM, m.certPEM, newMaster(t, ca).keyPEM); err == nil {
			t.Error("ServerTLS accepted a key that is not the certificate's")
		}
		if _, err := ClientTLS(ca.CertPEM, m.certPEM, nil, OrgMasters); err == nil {
			t.Error("ClientTLS accepted a certificate without its key")
		}
	})
}

// TestServerSendsCA: the CA certificate travels after the leaf, once,
// whether or not certPEM already carried it.
func TestServerSendsCA(t *testing.T) {
	ca := newCA(t, "berth-ca")
	m := newMaster(t, ca)
	for _, certPEM := range [][]byte{m.certPEM, append(slices.Clone(m.certPEM), ca.CertPEM...)} {
		cfg := must(t)(ServerTLS(ca.CertPEM, certPEM, m.keyPEM))
		chain := cfg.Certificates[0].Certificate
		if len(chain) != 2 || string(chain[1]) != string(ca.Cert.Raw) {
			t.Fatalf("chain of %d certificates", len(chain))
		}
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t, "berth-ca")
	m1, m2 := newMaster(t, ca), newMaster(t, ca)
	server := must(t)(MutualTLS(ca.CertPEM, m1.certPEM, m1.keyPEM))
	if server.RootCAs == nil || server.ClientCAs == nil || server.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatal("MutualTLS does not fill both sides")
	}

	state, cerr, serr := handshake(t, server, must(t)(MutualTLS(ca.CertPEM, m2.certPEM, m2.keyPEM)))
	if cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	if cn, _, ok := Identity(&state); !ok || cn != "master-1" {
		t.Fatalf("Identity = %q %v", cn, ok)
	}

	_, cerr, serr = handshake(t, server, must(t)(ClientTLS(ca.CertPEM, nil, nil, OrgMasters)))
	wantRefused(t, "no client certificate", cerr, serr, "certificate required")

	a := newAgent(t, ca, "node-1")
	_, cerr, serr = handshake(t, server, must(t)(ClientTLS(ca.CertPEM, a.certPEM, a.keyPEM, OrgMasters)))
	wantRefused(t, "agent speaking Raft", cerr, serr, "")
	if !strings.Contains(serr.Error(), "is not one of berth:masters") {
		t.Fatalf("agent speaking Raft: server error %v", serr)
	}

	foreign := newMaster(t, newCA(t, "other"))
	_, cerr, serr = handshake(t, server, must(t)(MutualTLS(ca.CertPEM, foreign.certPEM, foreign.keyPEM)))
	wantRefused(t, "master of another CA", cerr, serr, "")
}

func TestPinnedTLS(t *testing.T) {
	ca := newCA(t, "berth-ca")
	m := newMaster(t, ca)
	server := must(t)(ServerTLS(ca.CertPEM, m.certPEM, m.keyPEM))

	_, cerr, serr := handshake(t, server, must(t)(PinnedTLS(Fingerprint(ca.Cert))))
	if cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	upper := "sha256:" + strings.ToUpper(strings.TrimPrefix(Fingerprint(ca.Cert), "sha256:"))
	if _, cerr, serr := handshake(t, server, must(t)(PinnedTLS(upper))); cerr != nil || serr != nil {
		t.Fatal("upper-case hex:", cerr, serr)
	}

	other := newCA(t, "other")
	om := newMaster(t, other)
	otherServer := must(t)(ServerTLS(other.CertPEM, om.certPEM, om.keyPEM))
	_, cerr, serr = handshake(t, otherServer, must(t)(PinnedTLS(Fingerprint(ca.Cert))))
	wantRefused(t, "server of another CA", cerr, serr, "fingerprint")

	// The pinned CA's certificate is public: sending it after a leaf of
	// another CA must not pass.
	impostor := must(t)(ServerTLS(other.CertPEM, om.certPEM, om.keyPEM))
	impostor.Certificates[0].Certificate = append(impostor.Certificates[0].Certificate, ca.Cert.Raw)
	_, cerr, serr = handshake(t, impostor, must(t)(PinnedTLS(Fingerprint(ca.Cert))))
	wantRefused(t, "impostor with the CA certificate", cerr, serr, "does not chain")

	old := expired(t, ca, x509.ExtKeyUsageServerAuth)
	_, cerr, serr = handshake(t, must(t)(ServerTLS(ca.CertPEM, old.certPEM, old.keyPEM)), must(t)(PinnedTLS(Fingerprint(ca.Cert))))
	wantRefused(t, "expired server", cerr, serr, "expired")

	// An agent's client certificate cannot pose as a master.
	a := newAgent(t, ca, "node-1")
	_, cerr, serr = handshake(t, must(t)(ServerTLS(ca.CertPEM, a.certPEM, a.keyPEM)), must(t)(PinnedTLS(Fingerprint(ca.Cert))))
	wantRefused(t, "agent as server", cerr, serr, "is not one of berth:masters")
}

func TestPinnedTLSBadFingerprint(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, fp := range []string{
		"", good, "sha256:", "sha256:" + good[:62], "sha256:" + good + "ab",
		"sha256:" + good[:63] + "g", "SHA256:" + good, "sha1:" + good, " sha256:" + good,
	} {
		if _, err := PinnedTLS(fp); err == nil {
			t.Errorf("PinnedTLS(%q) accepted", fp)
		}
	}
}

// FuzzPinnedFingerprint: PinnedTLS accepts exactly "sha256:" and 64 hex
// digits, and the parsed pin prints back to the same fingerprint.
func FuzzPinnedFingerprint(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("0f", 32), "sha256:" + strings.Repeat("A", 64), "sha256:xyz", "", "sha256:"} {
		f.Add(s)
	}
	valid := regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)
	f.Fuzz(func(t *testing.T, s string) {
		_, err := PinnedTLS(s)
		if ok := valid.MatchString(s); ok != (err == nil) {
			t.Fatalf("PinnedTLS(%q): valid=%v, err=%v", s, ok, err)
		}
		if err != nil {
			return
		}
		sum, err := parseFingerprint(s)
		if err != nil || strings.ToLower(s) != fingerprintPrefix+hex.EncodeToString(sum) {
			t.Fatalf("parseFingerprint(%q) = %x, %v", s, sum, err)
		}
	})
}
