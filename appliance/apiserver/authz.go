package apiserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
)

// Roles of certificate holders, next to the token roles of package auth.
const (
	RoleNode   auth.Role = "node"
	RoleMaster auth.Role = "master"
)

// Identity is who sent a request, as the API authenticated it.
type Identity struct {
	Role auth.Role
	// Name says who, in logs: a token's ID or a certificate's CN (for an
	// agent, its node's name).
	Name string
}

type identityKey struct{}

func identityOf(r *http.Request) Identity {
	id, _ := r.Context().Value(identityKey{}).(Identity)
	return id
}

// authenticate finds who sent r: a client certificate signed by the
// cluster CA (agents, masters) or a bearer token kept in the state.
func (s *Server) authenticate(r *http.Request, st *state.State) (Identity, error) {
	if r.TLS != nil {
		if cn, orgs, ok := pki.Identity(r.TLS); ok {
			switch {
			case slices.Contains(orgs, pki.OrgNodes):
				return Identity{Role: RoleNode, Name: cn}, nil
			case slices.Contains(orgs, pki.OrgMasters):
				return Identity{Role: RoleMaster, Name: cn}, nil
			}
		}
	}
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		return Identity{}, errorf(http.StatusUnauthorized, "missing bearer token or client certificate")
	}
	t, err := auth.Verify(st.Tokens, secret, time.Now())
	if err != nil {
		return Identity{}, tokenRefused(err)
	}
	return Identity{Role: t.Role, Name: t.ID}, nil
}

// tokenRefused is the 401 for a token that Verify, or the FSM counting a
// join, refused. Which check failed is told only to the secret's holder
// (see auth.Verify).
func tokenRefused(err error) error {
	msg := "invalid bearer token"
	switch {
	case errors.Is(err, auth.ErrExpired):
		msg = "token has expired"
	case errors.Is(err, auth.ErrRevoked):
		msg = "token has been revoked"
	case errors.Is(err, auth.ErrUsedUp):
		msg = "token has been used up"
	case errors.Is(err, store.ErrRejected):
		// The leader refused it, its reason known only as text.
		msg = "token can no longer be used (used up, expired or revoked)"
	}
	return errorf(http.StatusUnauthorized, "%s", msg)
}

// policy decides whether an identity may make a request; handlers check
// what depends on the body (a node registering itself) themselves.
type policy func(id Identity, r *http.Request, st *state.State) bool

// readers: people's tokens and masters. Agents read only what is theirs.
func readers(id Identity, _ *http.Request, _ *state.State) bool {
	return id.Role == auth.RoleAdmin || id.Role == auth.RoleReadOnly || id.Role == RoleMaster
}

// anyone: every authenticated caller, whatever its role (a join token's
// holder and agents too).
func anyone(Identity, *http.Request, *state.State) bool { return true }

// admins: admin tokens only.
func admins(id Identity, _ *http.Request, _ *state.State) bool { return id.Role == auth.RoleAdmin }

// masters: other masters' certificates only.
func masters(id Identity, _ *http.Request, _ *state.State) bool { return id.Role == RoleMaster }

// joining allows a join token of the role.
func joining(role auth.Role) policy {
	return func(id Identity, _ *http.Request, _ *state.State) bool { return id.Role == role }
}

// self allows admins, and the agent of the node the path names.
func self(id Identity, r *http.Request, _ *state.State) bool {
	return id.Role == auth.RoleAdmin || id.Role == RoleNode && id.Name == r.PathValue("name")
}

// anyAgent allows admins and every agent (what handlers narrow down).
func anyAgent(id Identity, _ *http.Request, _ *state.State) bool {
	return id.Role == auth.RoleAdmin || id.Role == RoleNode
}

// proxies: what every node's service proxy reads, and people.
func proxies(id Identity, r *http.Request, st *state.State) bool {
	return id.Role == RoleNode || readers(id, r, st)
}

// podOwner allows admins, and the agent of the node the pod is bound to.
func podOwner(id Identity, r *http.Request, st *state.State) bool {
	if id.Role == auth.RoleAdmin {
		return true
	}
	p := st.Pods.Get(state.PodKey(r.PathValue("namespace"), r.PathValue("pod")))
	// A pod that is gone answers 404 to its agent, which retries deletes.
	return id.Role == RoleNode && (p == nil || p.NodeName == id.Name)
}

// claimNode allows admins, and the agent of the node the claim is bound to.
func claimNode(id Identity, r *http.Request, st *state.State) bool {
	if id.Role == auth.RoleAdmin {
		return true
	}
	c := st.Claims[state.PodKey(r.PathValue("namespace"), r.PathValue("claim"))]
	return id.Role == RoleNode && (c == nil || c.NodeName == id.Name)
}

// withIdentity returns ctx carrying id, for handlers and forwarding.
func withIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}
