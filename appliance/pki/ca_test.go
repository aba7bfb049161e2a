package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var passphrase = []byte("correct horse battery staple")

func newCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCARoundTrip(t *testing.T) {
	ca := newCA(t, "berth-ca")
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "berth-ca" {
		t.Fatalf("CA certificate: IsCA=%v CN=%q", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
	}
	blob, err := ca.EncryptKey(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("PRIVATE KEY")) {
		t.Fatal("encrypted key is PEM")
	}
	again, err := LoadCA(ca.CertPEM, blob, passphrase)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) || !bytes.Equal(again.CertPEM, ca.CertPEM) {
		t.Fatal("loaded certificate differs")
	}
	if !again.Key.(*ecdsa.PrivateKey).Equal(ca.Key) {
		t.Fatal("loaded key differs")
	}
	// The loaded CA signs certificates that the original's pool trusts.
	certPEM, _, err := again.IssueServer("m1", []string{OrgMasters}, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, ca, certPEM, x509.ExtKeyUsageServerAuth)

	// Two encryptions of the same key differ: fresh salt and nonce.
	other, err := ca.EncryptKey(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(blob[:headerLen], other[:headerLen]) {
		t.Fatal("salt and nonce repeated")
	}
}

func TestFingerprint(t *testing.T) {
	ca := newCA(t, "berth-ca")
	fp := Fingerprint(ca.Cert)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q", fp)
	}
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	if got, err := parseFingerprint(fp); err != nil || !bytes.Equal(got, sum[:]) {
		t.Fatalf("parseFingerprint(%q) = %x, %v", fp, got, err)
	}
	if Fingerprint(newCA(t, "berth-ca").Cert) == fp {
		t.Fatal("two CAs share a fingerprint")
	}
}

func TestLoadCAWrongPassphrase(t *testing.T) {
	ca := newCA(t, "berth-ca")
	blob, err := ca.EncryptKey(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadCA(ca.CertPEM, blob, []byte("wrong"))
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := ca.EncryptKey(nil); err == nil {
		t.Fatal("empty passphrase accepted")
	}
}

func TestLoadCATampered(t *testing.T) {
	ca := newCA(t, "berth-ca")
	blob, err := ca.EncryptKey(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   int
		want string
	}{
		{"magic", 0, "not an encrypted berth CA key"},
		{"version", len(keyMagic), "version"},
		{"salt", len(keyMagic) + 1, ErrDecrypt.Error()},
		{"nonce", headerLen - 1, ErrDecrypt.Error()},
		{"ciphertext", headerLen + 3, ErrDecrypt.Error()},
		{"tag", len(blob) - 1, ErrDecrypt.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := slices.Clone(blob)
			bad[tc.at] ^= 0x01
			if _, err := LoadCA(ca.CertPEM, bad, passphrase); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	for _, n := range []int{0, 5, headerLen, headerLen + 15, len(blob) - 1} {
		if _, err := LoadCA(ca.CertPEM, blob[:n], passphrase); err == nil {
			t.Fatalf("blob cut to %d bytes accepted", n)
		}
	}
	// A good blob under another CA's certificate.
	if _, err := LoadCA(newCA(t, "other").CertPEM, blob, passphrase); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("key of another CA: %v", err)
	}
	// A leaf is not a CA.
	leaf, _, err := ca.IssueServer("m1", []string{OrgMasters}, []string{"m1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(leaf, blob, passphrase); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("leaf as CA: %v", err)
	}
	if _, err := LoadCA([]byte("junk"), blob, passphrase); err == nil {
		t.Fatal("junk certificate accepted")
	}
}

func TestIssueServer(t *testing.T) {
	ca := newCA(t, "berth-ca")
	certPEM, keyPEM, err := ca.IssueServer("master-1", []string{OrgMasters}, []string{"10.0.0.1", "::1", "master-1.example"}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cert := verify(t, ca, certPEM, x509.ExtKeyUsageServerAuth)
	verify(t, ca, certPEM, x509.ExtKeyUsageClientAuth)
	if len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) ||
		!slices.Equal(cert.DNSNames, []string{"master-1.example"}) {
		t.Fatalf("SANs: %v %v", cert.IPAddresses, cert.DNSNames)
	}
	if err := cert.VerifyHostname("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("key is not a PKCS#8 PEM block")
	}
	if d := cert.NotAfter.Sub(time.Now()); d > 30*time.Minute || d < 29*time.Minute {
		t.Fatalf("validity ends in %v", d)
	}
	// Validity stops at the CA's own.
	long, _, err := ca.IssueServer("m", []string{OrgMasters}, []string{"m"}, 1000*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, ca, long, x509.ExtKeyUsageServerAuth); !c.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Fatalf("NotAfter %v beyond the CA's %v", c.NotAfter, ca.Cert.NotAfter)
	}
	for _, bad := range []struct {
		cn    string
		hosts []string
		v     time.Duration
	}{{"", []string{"a"}, time.Hour}, {"m", nil, time.Hour}, {"m", []string{""}, time.Hour}, {"m", []string{"a"}, 0}} {
		if _, _, err := ca.IssueServer(bad.cn, nil, bad.hosts, bad.v); err == nil {
			t.Errorf("IssueServer(%q, %q, %v) accepted", bad.cn, bad.hosts, bad.v)
		}
	}
}

func TestSignCSR(t *testing.T) {
	ca := newCA(t, "berth-ca")
	// The request asks for another name than it gets: the CA sets the subject.
	keyPEM, csrPEM, err := NewKeyAndCSR("admin")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrPEM, "node-1", []string{OrgNodes}, []string{"10.0.0.7"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := verify(t, ca, certPEM, x509.ExtKeyUsageClientAuth)
	verify(t, ca, certPEM, x509.ExtKeyUsageServerAuth)
	if cert.Subject.CommonName != "node-1" || !slices.Equal(cert.Subject.Organization, []string{OrgNodes}) {
		t.Fatalf("subject %v", cert.Subject)
	}
	if err := cert.VerifyHostname("10.0.0.7"); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*ecdsa.PrivateKey).PublicKey.Equal(cert.PublicKey) {
		t.Fatal("certificate is not for the requester's key")
	}
	if _, err := ca.SignCSR(csrPEM, "", nil, []string{"a"}, time.Hour); err == nil {
		t.Fatal("empty common name accepted")
	}
	if _, err := ca.SignCSR(csrPEM, "node-1", nil, nil, time.Hour); err == nil {
		t.Fatal("a certificate without hosts accepted")
	}
	if _, err := ca.SignCSR(certPEM, "node-1", nil, []string{"a"}, time.Hour); err == nil {
		t.Fatal("a certificate accepted as a CSR")
	}
}

// TestSignCSRForeignSignature: a request for key A signed with key B
// proves nothing about holding A, and is refused.
func TestSignCSRForeignSignature(t *testing.T) {
	ca := newCA(t, "berth-ca")
	_, csrPEM, err := NewKeyAndCSR("node-1")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(csr.RawTBSCertificateRequest)
	sig, err := ecdsa.SignASN1(rand.Reader, other, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{
		Info:      asn1.RawValue{FullBytes: csr.RawTBSCertificateRequest},
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, // ecdsa-with-SHA256
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	forged := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if _, err := x509.ParseCertificateRequest(der); err != nil {
		t.Fatalf("forged CSR does not even parse: %v", err)
	}
	if _, err := ca.SignCSR(forged, "node-1", nil, []string{"a"}, time.Hour); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("CSR signed by another key: %v", err)
	}
}

func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// verify parses certPEM and checks that it chains to ca for usage.
func verify(t *testing.T, ca *CA, certPEM []byte, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	certs, err := parseCerts(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// FuzzLoadCA feeds LoadCA arbitrary encrypted-key blobs: never a panic,
// and nothing but the genuine blob opens (each run pays for one scrypt,
// so this fuzzer is slow by design).
func FuzzLoadCA(f *testing.F) {
	ca := newCA(f, "berth-ca")
	blob, err := ca.EncryptKey(passphrase)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:headerLen])
	f.Add([]byte(keyMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := LoadCA(ca.CertPEM, data, passphrase)
		if err == nil && (!bytes.Equal(data, blob) || !got.Cert.Equal(ca.Cert)) {
			t.Fatalf("blob %x opened", data)
		}
	})
}
