package agent

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

func assignment() *api.NodeAssignment {
	cm := &objects.ConfigMap{Data: map[string]string{"greeting": "hi", "index.html": "<h1>x</h1>"}}
	s := &objects.Secret{Data: map[string]string{"pw": "aHVudGVyMg=="}, StringData: map[string]string{"user": "admin"}}
	return &api.NodeAssignment{ConfigMaps: map[string]*objects.ConfigMap{"ns/cfg": cm}, Secrets: map[string]*objects.Secret{"ns/creds": s}}
}

func TestResolveEnv(t *testing.T) {
	p := &state.Pod{Namespace: "ns", Name: "p"}
	c := &objects.Container{Env: []objects.EnvVar{
		{Name: "PLAIN", Value: "1"},
		{Name: "G", ValueFrom: &objects.EnvVarSource{ConfigMapKeyRef: &objects.KeySelector{Name: "cfg", Key: "greeting"}}},
		{Name: "PW", ValueFrom: &objects.EnvVarSource{SecretKeyRef: &objects.KeySelector{Name: "creds", Key: "pw"}}},
		{Name: "OPT", ValueFrom: &objects.EnvVarSource{SecretKeyRef: &objects.KeySelector{Name: "nope", Key: "k", Optional: true}}},
	}}
	env, _, err := resolveEnv(assignment(), p, c, &state.Node{})
	if err != nil || strings.Join(env, ",") != "PLAIN=1,G=hi,PW=hunter2" {
		t.Fatalf("%v %v", env, err)
	}
	c.Env = append(c.Env, objects.EnvVar{Name: "X", ValueFrom: &objects.EnvVarSource{ConfigMapKeyRef: &objects.KeySelector{Name: "cfg", Key: "missing"}}})
	var ce *configError
	if _, _, err := resolveEnv(assignment(), p, c, &state.Node{}); !errors.As(err, &ce) || !strings.Contains(err.Error(), `has no key "missing"`) {
		t.Fatalf("missing key: %v", err)
	}
}

// The downward API: the pod's own fields, its node's, and its containers'
// requests and limits divided and rounded up as the kubelet does (an
// unset limit is the node's capacity); the pod IP is left to the runtime.
func TestResolveEnvDownwardAPI(t *testing.T) {
	field := func(path string) *objects.EnvVarSource {
		return &objects.EnvVarSource{FieldRef: &objects.ObjectFieldSelector{FieldPath: path}}
	}
	res := func(container, resource, divisor string) *objects.EnvVarSource {
		return &objects.EnvVarSource{ResourceFieldRef: &objects.ResourceFieldSelector{ContainerName: container, Resource: resource, Divisor: objects.Quantity(divisor)}}
	}
	sidecar := objects.Container{Name: "side", Resources: objects.ResourceRequirements{Limits: objects.ResourceList{CPU: "250m", Memory: "64Mi"}}}
	c := objects.Container{Name: "app", Resources: objects.ResourceRequirements{Requests: objects.ResourceList{CPU: "100m", Memory: "100M"}, Limits: objects.ResourceList{Memory: "1Gi"}},
		Env: []objects.EnvVar{
			{Name: "NAME", ValueFrom: field("metadata.name")},
			{Name: "NS", ValueFrom: field("metadata.namespace")},
			{Name: "NODE", ValueFrom: field("spec.nodeName")},
			{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
			{Name: "HOST", ValueFrom: field("status.hostIP")},
			{Name: "TIER", ValueFrom: field("metadata.labels['tier']")},
			{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")},
			{Name: "ABSENT", ValueFrom: field("metadata.labels['nope']")},
			{Name: "IP", ValueFrom: field("status.podIP")},
			{Name: "CPU_REQ", ValueFrom: res("", "requests.cpu", "")},
			{Name: "CPU_REQ_M", ValueFrom: res("", "requests.cpu", "1m")},
			{Name: "CPU_LIM", ValueFrom: res("", "limits.cpu", "")},
			{Name: "MEM_LIM_MI", ValueFrom: res("", "limits.memory", "1Mi")},
			{Name: "MEM_REQ", ValueFrom: res("", "requests.memory", "")},
			{Name: "SIDE_CPU_REQ_M", ValueFrom: res("side", "requests.cpu", "1m")},
			{Name: "SIDE_MEM", ValueFrom: res("side", "limits.memory", "1M")},
		}}
	p := &state.Pod{Namespace: "ns", Name: "p", NodeName: "n1", Labels: map[string]string{"tier": "web"}, Annotations: map[string]string{"note": "hi"},
		Spec: objects.PodSpec{Containers: []objects.Container{c, sidecar}}}
	node := &state.Node{Name: "n1", Address: "10.0.0.7:10250", CPUMilli: 4000, MemoryBytes: 8 << 30}
	env, podIP, err := resolveEnv(&api.NodeAssignment{}, p, &p.Spec.Containers[0], node)
	want := "NAME=p,NS=ns,NODE=n1,SA=default,HOST=10.0.0.7,TIER=web,NOTE=hi,ABSENT=,CPU_REQ=1,CPU_REQ_M=100,CPU_LIM=4,MEM_LIM_MI=1024,MEM_REQ=100000000,SIDE_CPU_REQ_M=250,SIDE_MEM=68"
	if err != nil || strings.Join(env, ",") != want || strings.Join(podIP, ",") != "IP" {
		t.Fatalf("env %v, pod IP %v, %v;\nwant %s", strings.Join(env, ","), podIP, err, want)
	}
}

func TestPrepareVolumes(t *testing.T) {
	root := t.TempDir()
	mode := int32(0o640)
	p := &state.Pod{Namespace: "ns", Name: "p", Spec: objects.PodSpec{
		Volumes: []objects.Volume{
			{Name: "site", ConfigMap: &objects.ConfigMapVolumeSource{Name: "cfg", Items: []objects.KeyToPath{{Key: "index.html", Path: "html/index.html"}}, DefaultMode: &mode}},
			{Name: "creds", Secret: &objects.SecretVolumeSource{SecretName: "creds"}},
			{Name: "scratch", EmptyDir: &objects.EmptyDirVolumeSource{}},
		},
		Containers: []objects.Container{{Name: "c", VolumeMounts: []objects.VolumeMount{
			{Name: "site", MountPath: "/srv", ReadOnly: true}, {Name: "creds", MountPath: "/creds"}, {Name: "scratch", MountPath: "/tmp"}}}},
	}}
	mounts, err := prepareVolumes(root, assignment(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts["c"]) != 3 || !mounts["c"][0].ReadOnly {
		t.Fatalf("mounts %+v", mounts)
	}
	b, err := os.ReadFile(filepath.Join(mounts["c"][0].HostPath, "html", "index.html"))
	fi, _ := os.Stat(filepath.Join(mounts["c"][0].HostPath, "html", "index.html"))
	if err != nil || string(b) != "<h1>x</h1>" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("configMap file: %q %v %v", b, err, fi.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(mounts["c"][1].HostPath, "pw")); string(b) != "hunter2" {
		t.Fatalf("secret file: %q", b)
	}
	if fi, err := os.Stat(mounts["c"][2].HostPath); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("emptyDir: %v %v, want 0777 as the kubelet makes it", fi.Mode(), err)
	}
	// A new revision's data replaces the files in the same directory.
	a := assignment()
	a.Secrets["ns/creds"].StringData = nil
	if _, err := prepareVolumes(root, a, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mounts["c"][1].HostPath, "user")); !os.IsNotExist(err) {
		t.Fatalf("stale key still there: %v", err)
	}
}

// With fsGroup every volume directory belongs to the group and is setgid,
// projected files are group-readable, and the containers' processes have
// the group.
func TestVolumesFSGroup(t *testing.T) {
	root := t.TempDir()
	group := int64(2345)
	p := &state.Pod{Namespace: "ns", Name: "p", Spec: objects.PodSpec{
		SecurityContext: &objects.PodSecurityContext{FSGroup: &group, SupplementalGroups: []int64{7}},
		Volumes: []objects.Volume{
			{Name: "creds", Secret: &objects.SecretVolumeSource{SecretName: "creds"}},
			{Name: "scratch", EmptyDir: &objects.EmptyDirVolumeSource{}},
		},
		Containers: []objects.Container{{Name: "c", VolumeMounts: []objects.VolumeMount{{Name: "creds", MountPath: "/creds"}, {Name: "scratch", MountPath: "/tmp"}}}},
	}}
	mounts, err := prepareVolumes(root, assignment(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts["c"] {
		fi, err := os.Stat(m.HostPath)
		if err != nil || fi.Sys().(*syscall.Stat_t).Gid != uint32(group) || fi.Mode()&os.ModeSetgid == 0 {
			t.Errorf("%s: %v %v", m.ContainerPath, fi.Mode(), err)
		}
	}
	fi, err := os.Stat(filepath.Join(mounts["c"][0].HostPath, "pw"))
	if err != nil || fi.Sys().(*syscall.Stat_t).Gid != uint32(group) || fi.Mode().Perm() != 0o640 {
		t.Errorf("secret file: %v %v, want group %d, 0640", fi.Mode(), err, group)
	}
	a := &Agent{cfg: Config{DataDir: root, ClusterDomain: "cluster.local"}}
	rp, err := a.runtimePod(assignment(), p)
	if err != nil || !slices.Equal(rp.Containers[0].SupplementalGroups, []int64{7, group}) {
		t.Errorf("groups %v %v", rp.Containers[0].SupplementalGroups, err)
	}
}

// Thresholds: readiness starts failing, passes after one success, fails
// after two failures in a row.
func TestProbeThresholds(t *testing.T) {
	probe := &objects.Probe{Handler: objects.Handler{TCPSocket: &objects.TCPSocketAction{Port: objects.IntOrString{Int: 80}}},
		TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: 2}
	now := time.Now()
	s := newProbeState(probe, false, now)
	if !s.due(now) || !s.record(now, nil) || !s.ok {
		t.Fatal("first success did not make it ready")
	}
	if s.record(now, errors.New("x")) || !s.ok {
		t.Fatal("one failure flipped it")
	}
	if !s.record(now, errors.New("x")) || s.ok {
		t.Fatal("two failures did not flip it")
	}
	if s.due(now) || !s.due(now.Add(time.Second)) {
		t.Fatal("period not honoured")
	}
}

// TestRouteSync: routes are set at start and on each change, retried
// after a failure until they take, and a failure is logged once.
func TestRouteSync(t *testing.T) {
	var (
		calls int
		fail  error
		logs  strings.Builder
	)
	r := routeSync{
		set: func([]api.PodRoute) error { calls++; return fail },
		log: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	n2 := []api.PodRoute{{Node: "n2", PodCIDR: "10.244.2.0/24", Via: "10.0.0.2"}}
	for _, step := range []struct {
		routes    []api.PodRoute
		fail      error
		wantCalls int
	}{
		{nil, nil, 1},                           // at start, even with none: stale routes go
		{[]api.PodRoute{}, nil, 1},              // no change
		{n2, errors.New("no route to host"), 2}, // a change that fails...
		{n2, errors.New("no route to host"), 3}, // ...is retried
		{n2, nil, 4},                            // until it takes
		{n2, nil, 4},
	} {
		fail = step.fail
		r.update(step.routes)
		if calls != step.wantCalls {
			t.Fatalf("after update(%v): %d calls, want %d", step.routes, calls, step.wantCalls)
		}
	}
	if n := strings.Count(logs.String(), "no route to host"); n != 1 {
		t.Fatalf("the failure was logged %d times:\n%s", n, logs.String())
	}
}

// TestVolumesStayInside: ConfigMap and Secret volumes are mounted
// read-only whatever the spec says (as Kubernetes does since
// CVE-2017-1002102), and the agent, which rewrites their files as root on
// every sync, follows no link that a container planted in one out of it.
func TestVolumesStayInside(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	p := &state.Pod{Namespace: "ns", Name: "p", Spec: objects.PodSpec{
		Volumes: []objects.Volume{
			{Name: "site", ConfigMap: &objects.ConfigMapVolumeSource{Name: "cfg", Items: []objects.KeyToPath{{Key: "index.html", Path: "html/index.html"}}}},
			{Name: "creds", Secret: &objects.SecretVolumeSource{SecretName: "creds"}},
			{Name: "scratch", EmptyDir: &objects.EmptyDirVolumeSource{}},
		},
		Containers: []objects.Container{{Name: "c", VolumeMounts: []objects.VolumeMount{
			{Name: "site", MountPath: "/srv"}, {Name: "creds", MountPath: "/creds"}, {Name: "scratch", MountPath: "/tmp"}}}},
	}}
	mounts, err := prepareVolumes(root, assignment(), p)
	if err != nil {
		t.Fatal(err)
	}
	if m := mounts["c"]; !m[0].ReadOnly || !m[1].ReadOnly || m[2].ReadOnly {
		t.Fatalf("mounts %+v: want the ConfigMap and Secret read-only, the emptyDir writable", m)
	}
	// What a container could do to a volume mounted writable.
	site, creds := mounts["c"][0].HostPath, mounts["c"][1].HostPath
	if err := os.RemoveAll(filepath.Join(site, "html")); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{filepath.Join(site, "html"): outside, filepath.Join(creds, "pw.tmp"): filepath.Join(outside, "pw")} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	prepareVolumes(root, assignment(), p)
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("the agent wrote through a planted link: %v", entries)
	}
}

// envFrom makes every valid key a variable, prefixed, a later source
// winning and env winning over all; a missing source is a config error
// unless optional.
func TestResolveEnvFrom(t *testing.T) {
	p := &state.Pod{Namespace: "ns", Name: "p"}
	a := assignment()
	a.ConfigMaps["ns/more"] = &objects.ConfigMap{Data: map[string]string{"greeting": "hello", "bad key": "x", "1ST": "y"}}
	c := &objects.Container{
		EnvFrom: []objects.EnvFromSource{
			{ConfigMapRef: &objects.EnvFromObject{Name: "cfg"}},
			{ConfigMapRef: &objects.EnvFromObject{Name: "more"}},
			{Prefix: "DB_", SecretRef: &objects.EnvFromObject{Name: "creds"}},
			{SecretRef: &objects.EnvFromObject{Name: "absent", Optional: true}},
		},
		Env: []objects.EnvVar{{Name: "DB_pw", Value: "override"}},
	}
	env, _, err := resolveEnv(a, p, c, &state.Node{})
	if err != nil || strings.Join(env, ",") != "greeting=hello,index.html=<h1>x</h1>,DB_pw=override,DB_user=admin" {
		t.Fatalf("%v %v", env, err)
	}
	c.EnvFrom = append(c.EnvFrom, objects.EnvFromSource{ConfigMapRef: &objects.EnvFromObject{Name: "absent"}})
	var ce *configError
	if _, _, err := resolveEnv(a, p, c, &state.Node{}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "ConfigMap ns/absent not found") {
		t.Fatalf("missing source: %v", err)
	}
}

// While init containers run the pod reads as kubectl shows it, and its
// other containers wait; a failed one fails the pod only under Never.
func TestInitializingPodStatus(t *testing.T) {
	spec := objects.PodSpec{InitContainers: []objects.Container{{Name: "a"}, {Name: "b"}}, Containers: []objects.Container{{Name: "app"}}, RestartPolicy: "Always"}
	p := &state.Pod{Namespace: "ns", Name: "p", Spec: spec}
	done := runtime.ContainerStatus{Name: "a", State: runtime.StateExited, Reason: runtime.ReasonCompleted}
	for _, tc := range []struct {
		init   []runtime.ContainerStatus
		never  bool
		reason string
		phase  state.PodPhase
	}{
		{nil, false, "Init:0/2", state.PodPending},
		{[]runtime.ContainerStatus{{Name: "a", State: runtime.StateRunning}}, false, "Init:0/2", state.PodPending},
		{[]runtime.ContainerStatus{done, {Name: "b", State: runtime.StateRunning}}, false, "Init:1/2", state.PodPending},
		{[]runtime.ContainerStatus{done, {Name: "b", State: runtime.StateWaiting, Reason: runtime.ReasonCrashLoopBackOff, Restarts: 2}}, false, "Init:CrashLoopBackOff", state.PodPending},
		{[]runtime.ContainerStatus{{Name: "a", State: runtime.StateExited, ExitCode: 3, Reason: runtime.ReasonError}}, true, "Init:Error", state.PodFailed},
	} {
		p.Spec.RestartPolicy = "Always"
		if tc.never {
			p.Spec.RestartPolicy = "Never"
		}
		out := podStatus(p, &runtime.PodStatus{InitContainers: tc.init}, nil, nil, nil, time.Now())
		if out.Reason != tc.reason || out.Phase != tc.phase || len(out.InitContainers) != 2 || out.Containers[0].Reason != runtime.ReasonPodInitializing {
			t.Errorf("%+v: %s %s, init %+v, containers %+v; want %s %s", tc.init, out.Phase, out.Reason, out.InitContainers, out.Containers, tc.phase, tc.reason)
		}
	}
	// All done: the pod's own containers decide.
	out := podStatus(p, &runtime.PodStatus{InitContainers: []runtime.ContainerStatus{done, {Name: "b", State: runtime.StateExited}}}, nil, nil, nil, time.Now())
	if out.Reason != runtime.ReasonContainerCreating {
		t.Errorf("initialized: %+v", out)
	}
}

// A pod's image pull secrets become the runtime's registry credentials,
// in their order; a missing or non-registry Secret is passed over.
func TestPullCredentials(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("puller:s3cret"))
	a := &api.NodeAssignment{Secrets: map[string]*objects.Secret{
		"ns/regcred": {Type: objects.SecretTypeDockerConfigJSON, StringData: map[string]string{
			objects.DockerConfigJSONKey: `{"auths":{"registry.example.com":{"auth":"` + auth + `"},"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}`}},
		"ns/old":   {Type: objects.SecretTypeDockerCfg, StringData: map[string]string{objects.DockerCfgKey: `{"old.example.com":{"auth":"` + auth + `"}}`}},
		"ns/plain": {Type: "Opaque", StringData: map[string]string{"a": "b"}},
	}}
	p := &state.Pod{Namespace: "ns", Spec: objects.PodSpec{ImagePullSecrets: []objects.LocalObjectReference{{Name: "regcred"}, {Name: "missing"}, {Name: "plain"}, {Name: "old"}}}}
	want := []objects.RegistryAuth{
		{Registry: "https://index.docker.io/v1/", Username: "hub", Password: "pw"},
		{Registry: "registry.example.com", Username: "puller", Password: "s3cret"},
		{Registry: "old.example.com", Username: "puller", Password: "s3cret"},
	}
	if got := pullCredentials(a, p); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
