package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the output")

// Tokens of the test API, in kubeadm's format.
const (
	adminToken    = "abcdef.0123456789abcdef"
	readOnlyToken = "rdonly.0123456789abcdef"
)

// getCluster is a master's API over an in-memory store holding the
// revision of testdata/getrepo, two nodes, pods, a Job and a claim, with
// times relative to now. It returns clients with an admin and a
// read-only token; the server closes with the test.
func getCluster(t *testing.T) (admin, ro *api.Client, st *statetest.Store) {
	t.Helper()
	res := schemas.Load([]string{"testdata/getrepo"})
	if res.Errors() > 0 {
		t.Fatalf("testdata/getrepo: %v", res.Diagnostics)
	}
	now := time.Now()
	rev := state.Revision{Commit: "0123456789abcdef0123", Author: "ann", Message: "shop\n\nmore", Time: now.Add(-3 * time.Hour), Status: state.RevisionApplied}
	for _, l := range res.Objects {
		sum := sha256.Sum256(l.JSON)
		rev.Objects = append(rev.Objects, state.Object{ID: l.ID(), Digest: hex.EncodeToString(sum[:]), JSON: l.JSON})
	}
	cmds := []state.Command{state.NewCommand(state.CmdAddRevision, rev),
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", Address: "10.0.0.1:7444", Labels: map[string]string{"zone": "a"},
			CPUMilli: 2000, MemoryBytes: 4 << 30, EphemeralBytes: 20 << 30, PodCIDR: "10.244.1.0/24"}),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n1", Ready: true, Time: now.Add(-time.Hour)}),
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n2", Address: "10.0.0.2:7444", CPUMilli: 1500, MemoryBytes: 2 << 30, PodCIDR: "10.244.2.0/24"}),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n2", Ready: false, Reason: "containerd is down", Time: now.Add(-time.Minute)}),
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "shop/web", IP: "10.96.0.10"}),
		state.NewCommand(state.CmdPutClaim, state.Claim{Namespace: "shop", Name: "data", Bytes: 1 << 30, AccessModes: []string{"ReadWriteOnce"}, NodeName: "n1"}),
	}
	d, err := reconcile.DesiredState(&state.State{Revisions: []state.Revision{rev}})
	if err != nil {
		t.Fatal(err)
	}
	web := d.Deployments[0]
	cmds = append(cmds, state.NewCommand(state.CmdPutJob, state.Job{Namespace: "shop", Name: "migrate", Hash: reconcile.JobHash(d.Jobs[0].Spec), Spec: d.Jobs[0].Spec,
		Status: state.JobStatus{Start: now.Add(-2 * time.Hour), Succeeded: 1, Condition: state.JobComplete, Finished: now.Add(-time.Hour)}}))
	for i, name := range []string{"web-a", "web-b"} {
		p := state.Pod{Namespace: "shop", Name: name, Deployment: "web", TemplateHash: reconcile.TemplateHash(web.Spec.Template),
			Labels: map[string]string{"app": "web"}, Spec: web.Spec.Template.Spec, Created: now.Add(-time.Duration(i+1) * 90 * time.Second)}
		cmds = append(cmds, state.NewCommand(state.CmdCreatePod, p))
	}
	cmds = append(cmds, state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "shop/web-a", NodeName: "n1"}),
		state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "shop/web-a", Status: state.PodStatus{Phase: state.PodRunning, IP: "10.244.1.5", Ready: true,
			Restarts: 1, Containers: []state.ContainerStatus{{Name: "nginx", ID: "c0ffee", State: "running", Restarts: 1, Ready: true}}}}))
	st = statetest.NewStore()
	for secret, role := range map[string]auth.Role{adminToken: auth.RoleAdmin, readOnlyToken: auth.RoleReadOnly} {
		tok, err := auth.FromSecret(secret, role, "test", now)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, state.NewCommand(state.CmdAddToken, tok))
	}
	if _, err := st.Propose(context.Background(), cmds); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.NewServer(apiserver.Config{Backend: st, Heartbeats: &reconcile.Heartbeats{}}))
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := api.WithHTTPClient(&http.Client{Transport: tr})
	return api.NewClient(srv.URL, adminToken, hc), api.NewClient(srv.URL, readOnlyToken, hc), st
}

// get runs berth get's work with args against c.
func get(t *testing.T, c *api.Client, o getOptions, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runGet(context.Background(), c, &out, o, args)
	return out.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

var getKinds = []string{"nodes", "pods", "deployments", "daemonsets", "statefulsets", "jobs", "cronjobs", "services", "pvc",
	"configmaps", "secrets", "namespaces", "revisions"}

// TestGetGolden: every kind's table, default and wide, and its
// Kubernetes-shaped JSON, against testdata/get-*.golden (go test -update
// rewrites them). Inside a synctest bubble the clock stands still, so AGE
// and timestamps are the same each run.
func TestGetGolden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		admin, _, _ := getCluster(t)
		for _, kind := range append(getKinds, "all") {
			for _, output := range []string{"", "wide", "json"} {
				out, err := get(t, admin, getOptions{output: output}, kind)
				if err != nil {
					t.Fatalf("get %s -o %s: %v", kind, output, err)
				}
				name := "get-" + kind
				if output != "" {
					name += "-" + output
				}
				golden(t, name, out)
				if output == "json" && kind != "revisions" {
					checkKubernetesList(t, kind, out)
				}
			}
		}
	})
}

// kubeTypes are the Kubernetes types berth's objects must decode into
// with no field left over.
var kubeTypes = map[string]func() any{
	"Pod": func() any { return &corev1.Pod{} }, "Node": func() any { return &corev1.Node{} },
	"Service": func() any { return &corev1.Service{} }, "ConfigMap": func() any { return &corev1.ConfigMap{} },
	"Secret": func() any { return &corev1.Secret{} }, "Namespace": func() any { return &corev1.Namespace{} },
	"PersistentVolumeClaim": func() any { return &corev1.PersistentVolumeClaim{} },
	"Deployment":            func() any { return &appsv1.Deployment{} }, "DaemonSet": func() any { return &appsv1.DaemonSet{} },
	"StatefulSet": func() any { return &appsv1.StatefulSet{} }, "Job": func() any { return &batchv1.Job{} },
	"CronJob": func() any { return &batchv1.CronJob{} },
}

func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%T: %v in\n%s", v, err, b)
	}
}

// checkKubernetesList decodes a List and its items into the real
// Kubernetes types, refusing any field they do not have.
func checkKubernetesList(t *testing.T, kind, out string) {
	t.Helper()
	var list struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ListMeta   `json:"metadata"`
		Items           []json.RawMessage `json:"items"`
	}
	strict(t, []byte(out), &list)
	if list.Kind != "List" || list.APIVersion != "v1" || len(list.Items) == 0 {
		t.Fatalf("get %s -o json: %s %s with %d items", kind, list.APIVersion, list.Kind, len(list.Items))
	}
	for _, raw := range list.Items {
		var tm metav1.TypeMeta
		json.Unmarshal(raw, &tm)
		mk, ok := kubeTypes[tm.Kind]
		if !ok {
			t.Fatalf("get %s: an item of kind %q", kind, tm.Kind)
		}
		strict(t, raw, mk())
	}
}

// kubectl's scripts keep working: .items[].status.podIP, a single
// object for one NAME, .status.readyReplicas.
func TestGetJSONForKubectlScripts(t *testing.T) {
	admin, _, _ := getCluster(t)
	out, err := get(t, admin, getOptions{output: "json"}, "pods")
	if err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := json.Unmarshal([]byte(out), &pods); err != nil || len(pods.Items) != 2 || pods.Items[0].Status.PodIP != "10.244.1.5" ||
		pods.Items[0].Status.HostIP != "10.0.0.1" || pods.Items[0].Status.ContainerStatuses[0].RestartCount != 1 || pods.Items[0].Spec.NodeName != "n1" {
		t.Errorf("pods: %v\n%s", err, out)
	}
	out, err = get(t, admin, getOptions{output: "json"}, "deploy", "web")
	var dep appsv1.Deployment
	if err != nil || json.Unmarshal([]byte(out), &dep) != nil || dep.Kind != "Deployment" || dep.Status.ReadyReplicas != 1 || dep.Status.Replicas != 2 ||
		*dep.Spec.Replicas != 2 || dep.Labels["tier"] != "front" {
		t.Errorf("one deployment: %v\n%s", err, out)
	}
	out, err = get(t, admin, getOptions{output: "yaml"}, "svc", "web")
	if err != nil || !strings.Contains(out, "kind: Service\n") || !strings.Contains(out, "clusterIP: 10.96.0.10") {
		t.Errorf("a service as YAML: %v\n%s", err, out)
	}
}

// Secrets' values reach admins only: a read-only token's -o json has the
// keys with empty values, and both tables count them.
func TestGetSecrets(t *testing.T) {
	admin, ro, _ := getCluster(t)
	for _, tc := range []struct {
		c    *api.Client
		want string
	}{{admin, "aHVudGVyMg=="}, {ro, ""}} {
		out, err := get(t, tc.c, getOptions{output: "json"}, "secret", "db")
		var s corev1.Secret
		if err != nil || json.Unmarshal([]byte(out), &s) != nil || len(s.Data) != 1 || string(s.Data["password"]) != map[string]string{"aHVudGVyMg==": "hunter2", "": ""}[tc.want] {
			t.Errorf("secret: %v\n%s", err, out)
		}
		if out, err := get(t, tc.c, getOptions{}, "secrets"); err != nil || !strings.Contains(squeeze(out), "shop db Opaque 1") {
			t.Errorf("secrets table: %v\n%s", err, out)
		}
	}
}

// -l takes kubectl's selector syntax; a bad one is a usage error.
func TestGetSelector(t *testing.T) {
	admin, _, _ := getCluster(t)
	for sel, want := range map[string]string{
		"app=web":                  "configmap/conf deployment.apps/web job.batch/migrate service/web",
		"app=web,tier!=front":      "configmap/conf job.batch/migrate service/web",
		"app in (db,logs)":         "daemonset.apps/logs statefulset.apps/db",
		"!app":                     "cronjob.batch/report namespace/shop node/n1 node/n2 persistentvolumeclaim/data secret/db",
		"app notin (web),app":      "daemonset.apps/logs statefulset.apps/db",
		"zone=a":                   "node/n1",
		"team":                     "namespace/shop",
		"app=web,app=nope":         "",
		"app=web,tier=front,!gone": "deployment.apps/web",
	} {
		var got []string
		for _, kind := range []string{"configmaps", "deployments", "jobs", "services", "daemonsets", "statefulsets", "cronjobs", "pvc", "secrets", "nodes", "namespaces"} {
			out, err := get(t, admin, getOptions{output: "name", selector: sel}, kind)
			if err != nil {
				t.Fatalf("-l %q %s: %v", sel, kind, err)
			}
			got = append(got, strings.Fields(out)...)
		}
		slices.Sort(got)
		if strings.Join(got, " ") != want {
			t.Errorf("-l %q: %v, want %s", sel, got, want)
		}
	}
	if _, err := get(t, admin, getOptions{selector: "app=(x"}, "pods"); err == nil || !strings.Contains(err.Error(), "--selector") {
		t.Errorf("a bad selector: %v", err)
	}
}

// -o jsonpath= runs kubectl's templates over the Kubernetes-shaped JSON.
func TestGetJSONPath(t *testing.T) {
	admin, _, _ := getCluster(t)
	for tmpl, want := range map[string]string{
		`{.items[*].metadata.name}`:                                         "web-a web-b",
		`{range .items[*]}{.metadata.name}{"\t"}{.status.podIP}{"\n"}{end}`: "web-a\t10.244.1.5\nweb-b\t\n",
		`{.items[?(@.status.phase=="Running")].spec.nodeName}`:              "n1",
	} {
		out, err := get(t, admin, getOptions{output: "jsonpath=" + tmpl}, "pods")
		if err != nil || out != want {
			t.Errorf("jsonpath %s: %q %v, want %q", tmpl, out, err, want)
		}
	}
	if out, err := get(t, admin, getOptions{output: "jsonpath={.status.readyReplicas}"}, "deploy", "web"); err != nil || out != "1" {
		t.Errorf("one object's field: %q %v", out, err)
	}
	if _, err := get(t, admin, getOptions{output: "jsonpath={.items[*"}, "pods"); err == nil {
		t.Error("a bad template is accepted")
	}
}

// -w prints the listing, then each object that changes as the API's
// blocking queries report it, without a header, until interrupted.
func TestGetWatch(t *testing.T) {
	admin, _, st := getCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := newPipe()
	done := make(chan error, 1)
	go func() { done <- runGet(ctx, admin, pw, getOptions{watch: true}, []string{"pods"}) }()
	first := pr.lines(t, 3) // header, web-a, web-b
	if !strings.HasPrefix(first[0], "NAMESPACE") || !strings.Contains(first[2], "web-b") || !strings.Contains(first[2], "Pending") {
		t.Fatalf("listing: %q", first)
	}
	// A change elsewhere prints nothing; web-b's new status prints its row.
	if _, err := st.Propose(ctx, []state.Command{state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n2", Ready: true, Time: time.Now()})}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Propose(ctx, []state.Command{state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "shop/web-b", NodeName: "n2"}),
		state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "shop/web-b", Status: state.PodStatus{Phase: state.PodRunning, Ready: true}})}); err != nil {
		t.Fatal(err)
	}
	if got := pr.lines(t, 1); !strings.Contains(got[0], "web-b") || !strings.Contains(got[0], "Running") || strings.Contains(got[0], "NAMESPACE") {
		t.Errorf("change: %q", got)
	}
	if _, err := st.Propose(ctx, []state.Command{state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "shop/web-a"})}); err != nil {
		t.Fatal(err)
	}
	if got := pr.lines(t, 1); !strings.Contains(got[0], "web-a") {
		t.Errorf("a pod gone: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted watch: %v", err)
	}
}

// squeeze writes each line's columns one space apart.
func squeeze(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// berth get KIND NAME... keeps those named and says which it did not find;
// a revision is named by a prefix of its commit.
func TestGetNamesAndMissing(t *testing.T) {
	admin, _, _ := getCluster(t)
	out, err := get(t, admin, getOptions{output: "name", namespace: "shop"}, "pods", "web-a", "nope")
	var ee *exitError
	if out != "pod/web-a\n" || !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "nope") {
		t.Errorf("named pods: %q %v", out, err)
	}
	if out, err := get(t, admin, getOptions{output: "name", namespace: "other"}, "pods"); out != "" || err != nil {
		t.Errorf("another namespace: %q %v", out, err)
	}
	if out, err := get(t, admin, getOptions{output: "name"}, "rev", "0123"); out != "revision/0123456789abcdef0123\n" || err != nil {
		t.Errorf("a revision by a prefix: %q %v", out, err)
	}
	if out, err := get(t, admin, getOptions{selector: "app=logs"}, "all"); err != nil || !strings.HasPrefix(out, "NAMESPACE") || strings.Count(out, "\n") != 2 {
		t.Errorf("get all with one kind's objects: %q %v", out, err)
	}
	if _, err := get(t, admin, getOptions{}, "widgets"); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("an unknown kind: %v", err)
	}
	if _, err := get(t, admin, getOptions{output: "toml"}, "pods"); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("an unknown output: %v", err)
	}
}

// A namespace whose Namespace left the repository shows Terminating while
// its pods stop, as kubectl shows one being deleted.
func TestGetTerminatingNamespace(t *testing.T) {
	admin, _, st := getCluster(t)
	cur := st.State().Current()
	var kept []state.Object
	for _, o := range cur.Objects {
		if o.ID.Namespace != "shop" && !(o.ID.Kind == "Namespace" && o.ID.Name == "shop") {
			kept = append(kept, o)
		}
	}
	if _, err := st.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdAddRevision,
		state.Revision{Commit: "fedcba9876543210fedc", Status: state.RevisionApplied, Objects: kept, Time: time.Now()})}); err != nil {
		t.Fatal(err)
	}
	out, err := get(t, admin, getOptions{}, "namespaces")
	if err != nil || squeeze(out) != "NAME STATUS\nshop Terminating\n" {
		t.Errorf("get namespaces: %v\n%s", err, out)
	}
	if out, err := get(t, admin, getOptions{output: "jsonpath={.status.phase}"}, "namespaces", "shop"); err != nil || out != "Terminating" {
		t.Errorf("the namespace's phase: %v %q", err, out)
	}
}
