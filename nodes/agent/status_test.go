package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// TestStatusHidesDataDir: a sync that fails on a file of the node reports
// it to a real master without the node's data dir, which every holder of
// a read-only token could read in the pod's status.
func TestStatusHidesDataDir(t *testing.T) {
	master := newMaster(t)
	root := t.TempDir()
	a, err := New(Config{Node: state.Node{Name: "n1"}, Master: master, DataDir: filepath.Join(root, "agent"), NodeDir: root,
		NewRuntime: func(context.Context, state.Node) (Runtime, error) { return nil, errors.New("not needed") },
		Logger:     slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// A file where the pods' volumes go: preparing them fails on a path.
	if err := os.MkdirAll(filepath.Join(root, "agent"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "agent", "pods"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{
		Volumes:    []objects.Volume{{Name: "scratch", EmptyDir: &objects.EmptyDirVolumeSource{}}},
		Containers: []objects.Container{{Name: "c", Image: "i"}}}}
	ctx := context.Background()
	if _, err := master.RegisterNode(ctx, state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := master.propose(state.NewCommand(state.CmdCreatePod, *p), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: p.Key(), NodeName: "n1"})); err != nil {
		t.Fatal(err)
	}
	w := newPodWorker(ctx, a, p)
	w.update(p, &api.NodeAssignment{})
	w.sync(ctx)
	msg := master.st.State().Pods.Get(p.Key()).Status.Message
	if !strings.Contains(msg, "mkdir DATA/agent/pods") || strings.Contains(msg, root) {
		t.Fatalf("the pod's status says %q: want the error, with DATA for %s", msg, root)
	}
}

// testMaster is a real one-master store behind the real API, reached with
// an admin token.
type testMaster struct {
	*api.Client
	st *statetest.Store
}

func newMaster(t *testing.T) *testMaster {
	st := statetest.NewStore()
	const secret = "abcdef.0123456789abcdef"
	tok, err := auth.FromSecret(secret, auth.RoleAdmin, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := &testMaster{st: st}
	if err := m.propose(state.NewCommand(state.CmdAddToken, tok)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.NewServer(apiserver.Config{Backend: st, Heartbeats: &reconcile.Heartbeats{}}))
	t.Cleanup(srv.Close)
	m.Client = api.NewClient(srv.URL, secret)
	return m
}

func (m *testMaster) propose(cmds ...state.Command) error {
	_, err := m.st.Propose(context.Background(), cmds)
	return err
}
