// Package auth is the cluster's bearer tokens and the roles they carry.
// A token is "<id>.<secret>" in kubeadm's bootstrap-token format: the id
// names the token in lists, logs and revocations; only a hash of the
// secret is stored.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Role is what a token may do.
type Role string

const (
	RoleAdmin      Role = "admin"       // everything
	RoleReadOnly   Role = "read-only"   // reads only
	RoleMasterJoin Role = "master-join" // joining a master to the cluster
	RoleAgentJoin  Role = "agent-join"  // exchanging a CSR for an agent's certificate
)

// ValidRole reports whether r is one of the roles above.
func ValidRole(r Role) bool {
	switch r {
	case RoleAdmin, RoleReadOnly, RoleMasterJoin, RoleAgentJoin:
		return true
	}
	return false
}

// Token is a token as the cluster stores it: without its secret.
type Token struct {
	ID          string    `json:"id"`
	Hash        string    `json:"hash"`
	Role        Role      `json:"role"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"` // zero: never
	Revoked     bool      `json:"revoked,omitempty"`
}

// Why Verify fails. Each error Verify returns wraps exactly one of these.
var (
	ErrMalformed = errors.New("auth: malformed token")
	ErrUnknown   = errors.New("auth: unknown token")
	ErrMismatch  = errors.New("auth: wrong token secret")
	ErrRevoked   = errors.New("auth: token revoked")
	ErrExpired   = errors.New("auth: token expired")
)

const (
	idLen     = 6
	secretLen = 16
	alphabet  = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// New creates a token for role that expires after ttl (0: never). It
// returns the secret to hand to its user, once, and the Token to store.
func New(role Role, description string, ttl time.Duration, now time.Time) (secret string, t Token, err error) {
	if !ValidRole(role) {
		return "", Token{}, fmt.Errorf("auth: unknown role %q", role)
	}
	if ttl < 0 {
		return "", Token{}, fmt.Errorf("auth: negative ttl %v", ttl)
	}
	id, sec := randomString(idLen), randomString(secretLen)
	t = Token{ID: id, Hash: hash(sec), Role: role, Description: description, Created: now}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	return id + "." + sec, t, nil
}

// FromSecret makes the Token for a secret chosen elsewhere (an appliance's
// admin token given on the kernel command line), in the same format.
func FromSecret(secret string, role Role, description string, now time.Time) (Token, error) {
	if !ValidRole(role) {
		return Token{}, fmt.Errorf("auth: unknown role %q", role)
	}
	id, sec, err := Parse(secret)
	if err != nil {
		return Token{}, err
	}
	return Token{ID: id, Hash: hash(sec), Role: role, Description: description, Created: now}, nil
}

// Parse splits a token into its id and secret, checking the format
// [a-z0-9]{6}.[a-z0-9]{16}. Its error never quotes the input, which may
// be a real secret with a typo.
func Parse(secret string) (id, sec string, err error) {
	if len(secret) != idLen+1+secretLen || secret[idLen] != '.' {
		return "", "", ErrMalformed
	}
	id, sec = secret[:idLen], secret[idLen+1:]
	if !inAlphabet(id) || !inAlphabet(sec) {
		return "", "", ErrMalformed
	}
	return id, sec, nil
}

// Verify finds secret's token in tokens (keyed by id) and checks that it
// is the right secret, not revoked and not expired at now. The error says
// which check failed and names the token id, never the secret or its
// hash. The secret is checked before revocation and expiry, so only its
// holder learns that a token is revoked or expired. The id lookup is not
// constant-time: ids are public names, like kubeadm's.
func Verify(tokens map[string]Token, secret string, now time.Time) (Token, error) {
	id, sec, err := Parse(secret)
	if err != nil {
		return Token{}, err
	}
	t, ok := tokens[id]
	if !ok {
		return Token{}, fmt.Errorf("%w %s", ErrUnknown, id)
	}
	if subtle.ConstantTimeCompare([]byte(hash(sec)), []byte(t.Hash)) != 1 {
		return Token{}, fmt.Errorf("%w for %s", ErrMismatch, id)
	}
	if t.Revoked {
		return Token{}, fmt.Errorf("%w: %s", ErrRevoked, id)
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return Token{}, fmt.Errorf("%w: %s at %s", ErrExpired, id, t.Expires.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// hash is SHA-256 of the secret, in hex. A slow KDF (scrypt, argon2)
// exists to make guessing a low-entropy password from its hash expensive;
// this secret is 16 uniformly random characters of 36, about 82 bits, so
// even a leaked hash takes some 2^81 SHA-256 guesses on average, out of
// reach either way. A KDF would only add its cost to every API request.
func hash(sec string) string {
	sum := sha256.Sum256([]byte(sec))
	return hex.EncodeToString(sum[:])
}

// randomString draws n characters uniformly from alphabet: bytes of 252
// and up are rejected, because 256 is not a multiple of 36 and keeping
// them would favour the first four characters. crypto/rand.Read does not
// fail (it crashes the program rather than return short randomness).
func randomString(n int) string {
	const limit = 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

func inAlphabet(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
