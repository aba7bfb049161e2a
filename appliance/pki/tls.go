package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Every configuration below demands TLS 1.3: both ends are berth, so
// there is no old client to stay compatible with.

// ServerTLS is the masters' API listener: it serves certPEM and verifies a
// client certificate against the CA when one is presented, so people with
// bearer tokens and agents with certificates share one port. The handler
// decides what an unauthenticated connection may do (see Identity).
func ServerTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	c, err := withCert(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c.ClientAuth = tls.VerifyClientCertIfGiven
	return c, nil
}

// withCert is a TLS 1.3 configuration presenting certPEM and trusting the
// CA on both sides.
func withCert(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pool, cas, err := caPool(caPEM)
	if err != nil {
		return nil, err
	}
	cert, err := keyPair(certPEM, keyPEM, cas)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool}, nil
}

// MutualTLS is for Raft between masters: the same configuration serves
// the listener and dials peers, and each side requires the other's
// certificate signed by the CA. The peer's certificate must also be a
// master's (OrgMasters): an agent's certificate is signed by the same CA
// and must not be able to speak Raft.
func MutualTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	c, err := withCert(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c.ClientAuth, c.VerifyConnection = tls.RequireAndVerifyClientCert, requirePeer(OrgMasters)
	return c, nil
}

// requirePeer checks that the verified peer certificate is for org. The CA
// signs masters' and agents' certificates alike, and an agent chooses the
// host names in its own: without this check an agent could pose as a
// master to anyone who trusts the CA.
func requirePeer(org string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 {
			return errors.New("pki: peer presented no verified certificate")
		}
		return requireOrg(cs.VerifiedChains[0][0], org)
	}
}

func requireOrg(leaf *x509.Certificate, org string) error {
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.Subject.Organization, org) {
		return fmt.Errorf("pki: peer %q is not one of %s (its certificate is for %q)", leaf.Subject.CommonName, org, leaf.Subject.Organization)
	}
	return nil
}

// ClientTLS is for calling a server of the cluster: a master (serverOrg
// OrgMasters) or an agent's endpoint (OrgNodes). The server's certificate
// must chain to the CA, name the host dialled and be for serverOrg. The
// client certificate is presented when certPEM is not nil.
func ClientTLS(caPEM, certPEM, keyPEM []byte, serverOrg string) (*tls.Config, error) {
	pool, _, err := caPool(caPEM)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, VerifyConnection: requirePeer(serverOrg)}
	if certPEM != nil {
		cert, err := keyPair(certPEM, keyPEM, nil)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// PinnedTLS is for joining before having the CA: it accepts a server whose
// leaf certificate chains, for server auth and within its validity, to a
// certificate in the presented chain whose public key has the given
// fingerprint (see Fingerprint), and refuses anything else. The chain
// check matters: the CA certificate is public, so merely finding it in
// the chain would let anyone send it after their own leaf. Host names are
// not checked: the pin names the cluster, and the leaf must be a master's
// (OrgMasters), which only masters are issued.
func PinnedTLS(fingerprint string) (*tls.Config, error) {
	want, err := parseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Go's verification needs the roots up front; the callback below
		// does the whole check instead, against the pinned key.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(rawCerts, want)
		},
	}, nil
}

func verifyPinned(rawCerts [][]byte, want []byte) error {
	if len(rawCerts) == 0 {
		return errors.New("pki: server presented no certificate")
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	pinned := false
	var leaf *x509.Certificate
	for i, raw := range rawCerts {
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return fmt.Errorf("pki: server certificate: %w", err)
		}
		if i == 0 {
			leaf = cert
		} else {
			intermediates.AddCert(cert)
		}
		if sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo); bytes.Equal(sum[:], want) {
			roots.AddCert(cert)
			pinned = true
		}
	}
	if !pinned {
		return fmt.Errorf("pki: no certificate in the server's chain has fingerprint %s%x", fingerprintPrefix, want)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("pki: server certificate does not chain to the pinned CA: %w", err)
	}
	return requireOrg(leaf, OrgMasters)
}

// parseFingerprint reads "sha256:<64 hex digits>", hex in either case.
func parseFingerprint(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok {
		return nil, fmt.Errorf("pki: fingerprint %q does not start with %q", s, fingerprintPrefix)
	}
	sum, err := hex.DecodeString(h)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("pki: fingerprint %q is not %q and %d hex digits", s, fingerprintPrefix, 2*sha256.Size)
	}
	return sum, nil
}

// Identity is the subject of the peer certificate the handshake verified:
// on a server, the client's; ok is false when the client presented none.
func Identity(cs *tls.ConnectionState) (commonName string, orgs []string, ok bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", nil, false
	}
	leaf := cs.VerifiedChains[0][0]
	return leaf.Subject.CommonName, leaf.Subject.Organization, true
}

// caPool reads the trusted CA certificates; more than one is allowed, so
// that a new CA can be trusted alongside the old one during a rotation.
func caPool(caPEM []byte) (*x509.CertPool, []*x509.Certificate, error) {
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: CA: %w", err)
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	return pool, cas, nil
}

// keyPair loads certPEM and keyPEM and appends to the chain the CA
// certificates it lacks, so that a server sends its CA along: a joiner
// holding only PinnedTLS's fingerprint has no other way to get it.
func keyPair(certPEM, keyPEM []byte, cas []*x509.Certificate) (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: key pair: %w", err)
	}
	for _, ca := range cas {
		if !slices.ContainsFunc(cert.Certificate, func(der []byte) bool { return bytes.Equal(der, ca.Raw) }) {
			cert.Certificate = append(cert.Certificate, ca.Raw)
		}
	}
	return cert, nil
}
