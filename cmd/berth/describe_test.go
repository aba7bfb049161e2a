package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

// describe runs berth describe's work with args against c.
func describe(t *testing.T, c *api.Client, kind, name string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runDescribe(context.Background(), c, &out, kind, name)
	return out.String(), err
}

// TestDescribeGolden: every kind in kubectl describe's layout against
// testdata/describe-*.golden (go test -update rewrites them), over
// getCluster's objects, in a synctest bubble so that times stand still.
// web-a has an event, which ends its description.
func TestDescribeGolden(t *testing.T) {
	local := time.Local
	time.Local = time.UTC // kubectl prints local times; the files are in UTC
	t.Cleanup(func() { time.Local = local })
	synctest.Test(t, func(t *testing.T) {
		admin, _, _ := getCluster(t)
		pod := state.ObjectRef{Kind: "Pod", Namespace: "shop", Name: "web-a"}
		ev := state.NewEvent(state.EventWarning, "Unhealthy", pod, state.EventSource{Component: "kubelet"}, time.Now().Add(-time.Minute), "Readiness probe failed (container nginx): dial tcp 10.244.1.5:80: connection refused")
		if _, err := admin.RecordEvents(context.Background(), "n1", []state.Event{ev}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ kind, name, file string }{
			{"pod", "shop/web-a", "pod-running"}, {"po", "web-b", "pod-pending"},
			{"deploy", "web", "deployment"}, {"ds", "logs", "daemonset"}, {"sts", "shop/db", "statefulset"},
			{"job", "migrate", "job"}, {"cj", "report", "cronjob"}, {"svc", "web", "service"}, {"pvc", "data", "pvc"},
			{"node", "n1", "node-ready"}, {"no", "n2", "node-notready"},
			{"cm", "conf", "configmap"}, {"secret", "db", "secret"}, {"ns", "shop", "namespace"}, {"rev", "0123", "revision"},
		} {
			out, err := describe(t, admin, tc.kind, tc.name)
			if err != nil {
				t.Fatalf("describe %s %s: %v", tc.kind, tc.name, err)
			}
			golden(t, "describe-"+tc.file, out)
			if !strings.Contains(out, "\nEvents:") {
				t.Errorf("describe %s %s: no Events section", tc.kind, tc.name)
			}
		}
	})
}

// A Secret's value is never in describe's output, whoever asks: an admin
// sees each key's size, a read-only token not even that; the pod that
// reads it says where from, as kubectl does.
func TestDescribeSecretValues(t *testing.T) {
	admin, ro, _ := getCluster(t)
	for _, tc := range []struct {
		who  string
		c    *api.Client
		want string
	}{{"admin", admin, "password: 7 bytes"}, {"read-only", ro, "password: <size shown to admin tokens only>"}} {
		for _, args := range [][2]string{{"secret", "db"}, {"pod", "web-a"}, {"deploy", "web"}} {
			out, err := describe(t, tc.c, args[0], args[1])
			if err != nil {
				t.Fatalf("%s: describe %s: %v", tc.who, args, err)
			}
			for _, v := range []string{"hunter2", "aHVudGVyMg"} {
				if strings.Contains(out, v) {
					t.Errorf("%s: describe %s shows the Secret's value:\n%s", tc.who, args, out)
				}
			}
			if args[0] == "secret" && !strings.Contains(squeeze(out), tc.want) {
				t.Errorf("%s: describe secret: no %q in\n%s", tc.who, tc.want, out)
			}
			if args[0] != "secret" && !strings.Contains(squeeze(out), "PASSWORD: <set to the key 'password' in secret 'db'> Optional: false") {
				t.Errorf("%s: describe %s: the env from the Secret:\n%s", tc.who, args, out)
			}
		}
	}
}

// NAME is namespace/name or a bare name; one not found, a bare name in two
// namespaces and a kind describe does not take are errors.
func TestDescribeNames(t *testing.T) {
	admin, _, _ := getCluster(t)
	if out, err := describe(t, admin, "pod", "shop/web-a"); err != nil || !strings.HasPrefix(out, "Name:") {
		t.Errorf("namespace/name: %v\n%s", err, out)
	}
	for _, args := range [][2]string{{"pod", "other/web-a"}, {"pod", "nope"}, {"rev", "fff"}, {"all", "x"}, {"widgets", "x"}} {
		if _, err := describe(t, admin, args[0], args[1]); err == nil {
			t.Errorf("describe %s: no error", args)
		}
	}
}
