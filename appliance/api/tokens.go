package api

import (
	"github.com/berth/berth/appliance/state"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/berth/berth/appliance/auth"
)

// TokenRequest asks for a new token.
type TokenRequest struct {
	Role        auth.Role `json:"role"`
	Description string    `json:"description,omitempty"`
	// TTL is how long the token is valid, e.g. "24h", or "0" for until
	// revoked (kubeadm's --ttl 0); empty: the role's default (auth.DefaultLimits).
	TTL string `json:"ttl,omitempty"`
	// Uses is how many joins a join token allows, 0 for any number;
	// absent: the role's default (one for master-join, any number for
	// agent-join).
	Uses *int `json:"uses,omitempty"`
}

// NewToken is a created token: Secret is shown this once and never kept.
type NewToken struct {
	Secret string     `json:"secret"`
	Token  auth.Token `json:"token"`
}

// maxDescription bounds a token's description, which `berth token list`
// prints in a table.
const maxDescription = 200

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	var req TokenRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Description) > maxDescription || strings.IndexFunc(req.Description, unicode.IsControl) >= 0 {
		return nil, errorf(http.StatusBadRequest, "description: at most %d characters, none of them control characters", maxDescription)
	}
	if !auth.ValidRole(req.Role) {
		return nil, errorf(http.StatusBadRequest, "unknown role %q (want admin, read-only, master-join or agent-join)", req.Role)
	}
	lim := auth.DefaultLimits(req.Role)
	if req.TTL != "" {
		var err error
		if lim.TTL, err = time.ParseDuration(req.TTL); err != nil {
			return nil, errorf(http.StatusBadRequest, "ttl: want a duration such as 24h, or 0 for until revoked")
		}
	}
	if req.Uses != nil {
		lim.Uses = *req.Uses
	}
	// The role is known, so what New refuses is a limit the caller chose.
	secret, t, err := auth.New(req.Role, req.Description, lim, time.Now())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if err := s.propose(r, state.NewCommand(state.CmdAddToken, t)); err != nil {
		return nil, err
	}
	t.Hash = ""
	s.cfg.Logger.Info("token created", "id", t.ID, "role", t.Role, "expires", t.Expires, "uses", t.Uses, "by", identityOf(r).Name)
	return NewToken{Secret: secret, Token: t}, nil
}

// listTokens lists tokens without their hashes.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	out := []auth.Token{}
	for _, t := range st.Tokens {
		t.Hash = ""
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	id := r.PathValue("id")
	if _, ok := st.Tokens[id]; !ok {
		return nil, errorf(http.StatusNotFound, "no token %q", id)
	}
	if err := s.propose(r, state.NewCommand(state.CmdRevokeToken, state.TokenRef{ID: id})); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("token revoked", "id", id, "by", identityOf(r).Name)
	return map[string]bool{"ok": true}, nil
}
