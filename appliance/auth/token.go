// Package auth is the cluster's bearer tokens and the roles they carry.
// A token is "<id>.<secret>" in kubeadm's bootstrap-token format: the id
// names the token in lists, logs and revocations; only a hash of the
// secret is stored. Join tokens expire, and may allow a limited number of
// joins, so that one that leaks stops working on its own.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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

// Joins reports whether r's tokens are spent by joining (and only good
// for that).
func (r Role) Joins() bool { return r == RoleMasterJoin || r == RoleAgentJoin }

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
	// Uses is how many joins a join token allows (0: any number); Used
	// counts those made. The FSM counts them (state.CmdUseToken) before a
	// join is answered, so no two joins can share a single use.
	Uses int `json:"uses,omitempty"`
	Used int `json:"used,omitempty"`
	// UsedBy names the joins counted against a token of limited uses (at
	// most Uses entries): a join retried after an answer that was lost
	// (a leader change while it committed) is the same join, not a second.
	UsedBy  []string `json:"usedBy,omitempty"`
	Revoked bool     `json:"revoked,omitempty"`
}

// Limits bound a new token's life: TTL from its creation (0: it never
// expires) and Uses, for join tokens (0: any number of joins).
type Limits struct {
	TTL  time.Duration
	Uses int
}

// JoinTTL is how long a join token lasts unless its creator says
// otherwise: kubeadm's bootstrap tokens' default.
const JoinTTL = 24 * time.Hour

// DefaultLimits are a role's limits unless its creator says otherwise.
// Join tokens expire after JoinTTL, as kubeadm's bootstrap tokens do. A
// master join is a rare, deliberate act that hands over the cluster's CA
// key, so a master join token also works once; an agent join token admits
// any number of workers until it expires, as kubeadm's and k3s's do.
// People's tokens (admin, read-only) are credentials, not bootstrap
// secrets: they last until revoked, as a kubeconfig's do.
func DefaultLimits(role Role) Limits {
	switch role {
	case RoleMasterJoin:
		return Limits{TTL: JoinTTL, Uses: 1}
	case RoleAgentJoin:
		return Limits{TTL: JoinTTL}
	}
	return Limits{}
}

// Why Verify fails. Each error Verify returns wraps exactly one of these.
var (
	ErrMalformed = errors.New("auth: malformed token")
	ErrUnknown   = errors.New("auth: unknown token")
	ErrMismatch  = errors.New("auth: wrong token secret")
	ErrRevoked   = errors.New("auth: token revoked")
	ErrExpired   = errors.New("auth: token expired")
	ErrUsedUp    = errors.New("auth: token used up")
)

const (
	idLen     = 6
	secretLen = 16
	alphabet  = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// New creates a token for role within lim. It returns the secret to hand
// to its user, once, and the Token to store.
func New(role Role, description string, lim Limits, now time.Time) (secret string, t Token, err error) {
	if !ValidRole(role) {
		return "", Token{}, fmt.Errorf("auth: unknown role %q", role)
	}
	if lim.TTL < 0 {
		return "", Token{}, fmt.Errorf("auth: negative ttl %v", lim.TTL)
	}
	if lim.Uses < 0 {
		return "", Token{}, fmt.Errorf("auth: negative uses %d: want a count of joins, or 0 for any number", lim.Uses)
	}
	if lim.Uses > 0 && !role.Joins() {
		return "", Token{}, fmt.Errorf("auth: uses: only join tokens are spent by joining; %s tokens last until they expire or are revoked", role)
	}
	id, sec := randomString(idLen), randomString(secretLen)
	t = Token{ID: id, Hash: hash(sec), Role: role, Description: description, Created: now, Uses: lim.Uses}
	if lim.TTL > 0 {
		t.Expires = now.Add(lim.TTL)
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
// is the right secret, not revoked and not expired at now. A join token's
// uses are Use's to count and refuse: a join sent again after its answer
// was lost is allowed past the last use.
// The error says which check failed and names the token id, never the
// secret or its hash. The secret is checked first, so only its holder
// learns that a token is revoked, expired or used up. The id lookup is not
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
	if err := t.live(now); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Use is t after one more join at now by the joiner named by (its key's
// id, or "" for none): the FSM's check, with the time the proposing master
// put in the command, so that every master decides the same. It fails as
// Verify would for a revoked or expired token, and for a used-up one,
// except that a join already counted for by is counted once and allowed
// again.
func (t Token) Use(now time.Time, by string) (Token, error) {
	if !t.Role.Joins() {
		return Token{}, fmt.Errorf("auth: %s is a %s token, not a join token", t.ID, t.Role)
	}
	if err := t.live(now); err != nil {
		return Token{}, err
	}
	if t.Uses > 0 && by != "" && slices.Contains(t.UsedBy, by) {
		return t, nil
	}
	if t.Uses > 0 && t.Used >= t.Uses {
		return Token{}, fmt.Errorf("%w: %s was good for %d join(s)", ErrUsedUp, t.ID, t.Uses)
	}
	t.Used++
	if t.Uses > 0 && by != "" {
		t.UsedBy = append(slices.Clone(t.UsedBy), by)
	}
	return t, nil
}

// live fails for a revoked or expired token.
func (t Token) live(now time.Time) error {
	switch {
	case t.Revoked:
		return fmt.Errorf("%w: %s", ErrRevoked, t.ID)
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return fmt.Errorf("%w: %s at %s", ErrExpired, t.ID, t.Expires.UTC().Format(time.RFC3339))
	}
	return nil
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
