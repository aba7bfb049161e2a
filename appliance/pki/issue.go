package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"
)

// Organizations of the certificates the cluster CA signs: they say what a
// certificate is for, its common name says whom.
const (
	OrgMasters = "berth:masters" // a master; CN is its Raft ID
	OrgNodes   = "berth:nodes"   // an agent; CN is its node's name
)

// IssueServer creates a key and a certificate for it, for a master that
// makes its own (the first one, at bootstrap). Everyone else sends a
// certificate request instead; see SignCSR.
func (ca *CA) IssueServer(commonName string, orgs, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	tmpl, err := leafTemplate(commonName, orgs, hosts)
	if err != nil {
		return nil, nil, err
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = ca.sign(tmpl, key.Public(), validity); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = marshalKey(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// NewKeyAndCSR creates a key and a certificate request for it, as a joining
// master or agent does: the key never leaves the machine that made it.
func NewKeyAndCSR(commonName string) (keyPEM, csrPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: certificate request: %w", err)
	}
	if keyPEM, err = marshalKey(key); err != nil {
		return nil, nil, err
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// SignCSR issues a certificate for the key in csrPEM. Subject and hosts are
// what the caller decided from the credentials the request came with; the
// CSR's own subject and extensions are ignored, because they are whatever
// the requester wished for. The CSR's signature must verify, proving the
// requester holds the key.
func (ca *CA) SignCSR(csrPEM []byte, commonName string, orgs, hosts []string, validity time.Duration) (certPEM []byte, err error) {
	tmpl, err := leafTemplate(commonName, orgs, hosts)
	if err != nil {
		return nil, err
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	return ca.sign(tmpl, csr.PublicKey, validity)
}

// CSRKeyID names the key a certificate request is for (SHA-256 of its
// public key, in hex): a join retried with the same request is the same
// join, whatever else it says.
func CSRKeyID(csrPEM []byte) (string, error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// parseCSR decodes a certificate request whose signature verifies.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("pki: no PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: certificate request signature: %w", err)
	}
	return csr, nil
}

// leafTemplate is a certificate for a master (orgs OrgMasters) or an agent
// (OrgNodes): hosts (IP addresses and DNS names) become its SANs. It is
// good for both server and client auth: masters dial each other over mutual
// TLS for Raft, and agents serve logs to the masters and call them.
func leafTemplate(commonName string, orgs, hosts []string) (*x509.Certificate, error) {
	if commonName == "" {
		return nil, errors.New("pki: certificate needs a common name")
	}
	if len(hosts) == 0 {
		return nil, errors.New("pki: certificate needs at least one host")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: orgs},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case h == "":
			return nil, errors.New("pki: empty host name")
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl, nil
}

// sign fills in serial and validity and signs tmpl for pub. Validity ends
// no later than the CA's own: a leaf outliving its issuer would fail
// verification anyway, and a clear end date is better than a false one.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("pki: validity %v is not positive", validity)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate: %w", err)
	}
	return encodeCert(der), nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	return key, nil
}
