package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
)

// Files of a master's identity under DATA/tls. The cluster secret decrypts
// the CA's key kept in the Raft state; it never enters the log.
const (
	caFile     = "ca.crt"
	certFile   = "master.crt"
	keyFile    = "master.key"
	secretFile = "cluster-secret"
)

// certValidity is how long issued certificates last; rotation is future
// work, so it is long.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 5 * 365 * 24 * time.Hour
)

// identity is a master's TLS material.
type identity struct {
	caPEM, certPEM, keyPEM []byte
	secret                 []byte
}

func tlsDir(dataDir string) string { return filepath.Join(dataDir, "tls") }

func loadIdentity(dataDir string) (*identity, error) {
	dir := tlsDir(dataDir)
	var id identity
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{caFile, &id.caPEM}, {certFile, &id.certPEM}, {keyFile, &id.keyPEM}, {secretFile, &id.secret}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	id.secret = bytes.TrimSpace(id.secret)
	return &id, nil
}

func (id *identity) save(dataDir string) error {
	dir := tlsDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range map[string][]byte{caFile: id.caPEM, certFile: id.certPEM, keyFile: id.keyPEM, secretFile: append(id.secret, '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// certHosts are the names a master's certificate carries: its API and
// Raft hosts, and loopback for local clients.
func certHosts(addrs ...string) []string {
	hosts := []string{"127.0.0.1", "localhost"}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// bootstrapIdentity creates the cluster CA, the cluster secret and this
// master's certificate.
func bootstrapIdentity(name string, hosts []string) (*identity, *pki.CA, error) {
	ca, err := pki.NewCA("berth cluster CA", caValidity)
	if err != nil {
		return nil, nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, err
	}
	id := &identity{caPEM: ca.CertPEM, secret: []byte(hex.EncodeToString(raw))}
	id.certPEM, id.keyPEM, err = ca.IssueServer(name, []string{pki.OrgMasters}, hosts, certValidity)
	return id, ca, err
}

// bootstrapState proposes what a new cluster starts with: its CA (key
// encrypted with the cluster secret), this master's API URL, an admin
// token (the given secret, or a new one) and the two join tokens, with
// their roles' default limits (the master join token is good for one join
// within 24 hours, the agent join token for any number). It returns the
// secrets of the three tokens.
func (m *Master) bootstrapState(ctx context.Context, ca *pki.CA, adminSecret string) (admin, masterJoin, agentJoin string, err error) {
	enc, err := ca.EncryptKey(m.id.secret)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	network := m.cfg.PodNetwork
	if network == (state.PodNetwork{}) {
		network = state.DefaultPodNetwork
	}
	cmds := []state.Command{
		state.NewCommand(state.CmdSetCA, state.ClusterCA{CertPEM: ca.CertPEM, EncryptedKey: enc}),
		state.NewCommand(state.CmdSetMasterAPI, state.MasterAPI{ID: m.cfg.Name, URL: m.URL()}),
		state.NewCommand(state.CmdSetPodNetwork, network),
	}
	secrets := make([]string, 3)
	for i, role := range []auth.Role{auth.RoleAdmin, auth.RoleMasterJoin, auth.RoleAgentJoin} {
		var t auth.Token
		if role == auth.RoleAdmin && adminSecret != "" {
			t, err = auth.FromSecret(adminSecret, role, "bootstrap admin", now)
			secrets[i] = adminSecret
		} else {
			secrets[i], t, err = auth.New(role, "bootstrap "+string(role), auth.DefaultLimits(role), now)
		}
		if err != nil {
			return "", "", "", err
		}
		cmds = append(cmds, state.NewCommand(state.CmdAddToken, t))
	}
	if _, err := m.Store.Propose(ctx, cmds); err != nil {
		return "", "", "", err
	}
	return secrets[0], secrets[1], secrets[2], nil
}

// join asks a member, trusted by the CA fingerprint, for this master's
// certificate and the cluster secret.
func joinCluster(ctx context.Context, servers, token, caHash string, req api.JoinRequest) (*identity, []string, error) {
	pinned, err := pki.PinnedTLS(caHash)
	if err != nil {
		return nil, nil, err
	}
	c := api.NewClient(servers, token, api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: pinned}, Timeout: 30 * time.Second}))
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(req.Name)
	if err != nil {
		return nil, nil, err
	}
	req.CSRPEM = csrPEM
	resp, err := c.JoinMaster(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if resp.ClusterSecret == "" {
		return nil, nil, errors.New("the cluster sent no cluster secret")
	}
	return &identity{caPEM: resp.CAPEM, certPEM: resp.CertPEM, keyPEM: keyPEM, secret: []byte(resp.ClusterSecret)}, resp.Masters, nil
}

// cluster is the master's side of the API's membership routes.
type cluster struct{ m *Master }

func (c cluster) loadCA() (*pki.CA, error) {
	st := c.m.Store.State()
	if st.CA == nil {
		return nil, errors.New("the cluster has no CA yet")
	}
	return pki.LoadCA(st.CA.CertPEM, st.CA.EncryptedKey, c.m.id.secret)
}

// Join issues a certificate: any master can, since all hold the secret.
func (c cluster) Join(ctx context.Context, role auth.Role, req api.JoinRequest) (api.JoinResponse, error) {
	ca, err := c.loadCA()
	if err != nil {
		return api.JoinResponse{}, err
	}
	st := c.m.Store.State()
	resp := api.JoinResponse{CAPEM: ca.CertPEM}
	for _, u := range st.MasterAPIs {
		resp.Masters = append(resp.Masters, u)
	}
	slices.Sort(resp.Masters)
	org := pki.OrgNodes
	// The agent join token lets its holder name the node; a node that is
	// up cannot be named by a second machine, which would then read that
	// node's Secrets with its certificate.
	if n, ok := st.Nodes[req.Name]; role == auth.RoleAgentJoin && ok && n.Ready {
		return api.JoinResponse{}, fmt.Errorf("node %q is registered and ready: another machine cannot join under its name (a reinstalled node can once it shows NotReady)", req.Name)
	}
	if role == auth.RoleMasterJoin {
		if _, taken := st.MasterAPIs[req.Name]; taken {
			return api.JoinResponse{}, fmt.Errorf("a master named %q is a member already", req.Name)
		}
		org, resp.ClusterSecret = pki.OrgMasters, string(c.m.id.secret)
	}
	resp.CertPEM, err = ca.SignCSR(req.CSRPEM, req.Name, []string{org}, req.Hosts, certValidity)
	return resp, err
}

func (c cluster) AddMember(ctx context.Context, req api.MemberRequest) error {
	return c.onLeader(ctx, "/v1/internal/members", req, func() error {
		if err := c.m.Store.AddVoter(ctx, req.ID, req.RaftAddr); err != nil {
			return err
		}
		_, err := c.m.Store.Propose(ctx, []state.Command{state.NewCommand(state.CmdSetMasterAPI, state.MasterAPI{ID: req.ID, URL: req.APIURL})})
		c.m.cfg.Logger.Info("master added", "id", req.ID, "raft", req.RaftAddr, "api", req.APIURL)
		return err
	})
}

// onLeader runs op when this master leads and otherwise sends the request
// to the leader. Right after leadership moved (a leader leaving hands it
// over), neither side may know it yet: that is retried for a few seconds.
func (c cluster) onLeader(ctx context.Context, path string, body any, op func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		switch {
		case c.m.Store.IsLeader():
			err = op()
		case c.LeaderURL() == c.m.URL():
			// Raft names this master leader before it has taken office.
			err = store.ErrNotLeader
		default:
			err = c.m.forward(ctx, path, body)
		}
		var le *leaderError
		moved := errors.Is(err, store.ErrNotLeader) || errors.As(err, &le) && le.code == http.StatusServiceUnavailable
		if err == nil || !moved || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaderError is the leader's answer to a forwarded request.
type leaderError struct {
	code int
	msg  string
}

func (e *leaderError) Error() string { return fmt.Sprintf("leader answered %d: %s", e.code, e.msg) }

func (c cluster) RemoveMember(ctx context.Context, id string) error {
	if c.m.Store.IsLeader() && id == c.m.cfg.Name {
		if err := c.m.Store.TransferLeadership(ctx); err != nil {
			return fmt.Errorf("handing over leadership before leaving: %w", err)
		}
	}
	return c.onLeader(ctx, "/v1/internal/members/remove", api.MemberRequest{ID: id}, func() error {
		if err := c.m.Store.RemoveServer(ctx, id); err != nil {
			return err
		}
		_, err := c.m.Store.Propose(ctx, []state.Command{state.NewCommand(state.CmdSetMasterAPI, state.MasterAPI{ID: id})})
		c.m.cfg.Logger.Info("master removed", "id", id)
		return err
	})
}

func (c cluster) Members(st *state.State) ([]api.Member, error) {
	ms, err := c.m.Store.Members()
	if err != nil {
		return nil, err
	}
	out := make([]api.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.Member{ID: m.ID, RaftAddr: m.Address, APIURL: st.MasterAPIs[m.ID], Voter: m.Voter, Leader: m.Leader})
	}
	slices.SortFunc(out, func(a, b api.Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (c cluster) VerifyLeader(ctx context.Context) error { return c.m.Store.VerifyLeader(ctx) }

func (c cluster) IsLeader() bool { return c.m.Store.IsLeader() }

func (c cluster) LeaderURL() string {
	id, _ := c.m.Store.Leader()
	return c.m.Store.State().MasterAPIs[id]
}

func (c cluster) Forward(ctx context.Context, path string, body any) error {
	return c.m.forward(ctx, path, body)
}

func (c cluster) SaveSnapshot(ctx context.Context, w io.Writer) error {
	return c.m.Store.SaveSnapshot(ctx, w)
}

// RestoreSnapshot installs a backup through the leader: a follower relays
// the stream to it.
func (c cluster) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	if c.m.Store.IsLeader() {
		return c.m.Store.RestoreSnapshot(ctx, r)
	}
	return c.m.toLeader(ctx, http.MethodPut, "/v1/internal/snapshot", r, nil)
}

// forward sends a leader-only request to the leader over mutual TLS, as
// this master.
func (m *Master) forward(ctx context.Context, path string, body any) error {
	return m.forwardOut(ctx, path, body, nil)
}

// forwardOut is forward, decoding the leader's answer into out.
func (m *Master) forwardOut(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return m.toLeader(ctx, http.MethodPost, path, bytes.NewReader(b), out)
}

// leaderWait is how long a request waits for an election to end before it
// fails: nothing has been sent yet, so waiting is safe where a retry of a
// sent request would not be.
const leaderWait = 5 * time.Second

// awaitLeader returns the leader's API URL, waiting while none is known.
func (m *Master) awaitLeader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(leaderWait)
	for {
		if leader := (cluster{m}).LeaderURL(); leader != "" {
			return leader, nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("no leader known")
		}
		select {
		case <-ctx.Done():
			return "", errors.New("no leader known")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// toLeader sends one request to the leader's API as this master.
func (m *Master) toLeader(ctx context.Context, method, path string, body io.Reader, out any) error {
	leader, err := m.awaitLeader(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, leader+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.peers.Do(req)
	if err != nil {
		return fmt.Errorf("forwarding to the leader: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		// The API answers {"error": "..."}; anything else is passed on whole.
		var apiErr struct{ Error string }
		if json.Unmarshal(msg, &apiErr) == nil && apiErr.Error != "" {
			msg = []byte(apiErr.Error)
		}
		return &leaderError{code: resp.StatusCode, msg: string(bytes.TrimSpace(msg))}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// backend is the store as the API uses it: writes on a follower go to the
// leader.
type backend struct {
	*store.Store
	m *Master
}

func (b backend) Propose(ctx context.Context, batch []state.Command) (uint64, error) {
	index, err := b.Store.Propose(ctx, batch)
	if !errors.Is(err, store.ErrNotLeader) {
		return index, err
	}
	var out struct{ Index uint64 }
	if err := b.m.forwardOut(ctx, "/v1/internal/propose", batch, &out); err != nil {
		var le *leaderError
		if errors.As(err, &le) && le.code == http.StatusConflict {
			// The leader's FSM refused the batch: as final as it is here.
			return 0, fmt.Errorf("%w by the leader: %s", store.ErrRejected, le.msg)
		}
		return 0, err
	}
	// The leader committed it; wait until this follower has applied it,
	// so that the caller reads its own write here.
	for idx := b.Store.State().Index; idx < out.Index; {
		if idx, err = b.Store.Wait(ctx, idx); err != nil {
			return 0, err
		}
	}
	return out.Index, nil
}
