package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/containerd/containerd/identifiers"
)

// Labels on containerd containers. They are the runtime's only record of a
// pod: ListPods rebuilds everything from them after an agent restart.
const (
	labelKind          = "io.berth.kind" // kindSandbox or kindContainer
	labelPodKey        = "io.berth.pod.key"
	labelPodNamespace  = "io.berth.pod.namespace"
	labelPodName       = "io.berth.pod.name"
	labelPodUID        = "io.berth.pod.uid"
	labelContainerName = "io.berth.container.name"
	labelNetNS         = "io.berth.netns"
	labelIP            = "io.berth.ip"
	labelRestartPolicy = "io.berth.restart-policy"
	labelHostname      = "io.berth.hostname"
	labelCreated       = "io.berth.created"
	labelRestarts      = "io.berth.restarts"
	labelSpecHash      = "io.berth.spec-hash"
	labelImage         = "io.berth.image"
	labelStartedAt     = "io.berth.started-at"
	labelFinishedAt    = "io.berth.finished-at"
	labelStartError    = "io.berth.start-error"
	labelInit          = "io.berth.init" // "true" on init containers
	labelPreStop       = "io.berth.pre-stop"

	kindSandbox   = "sandbox"
	kindContainer = "container"
)

// maxLabelMessage keeps an error stored in a label well inside containerd's
// 4096-byte limit on a label.
const maxLabelMessage = 1024

// podKey is a pod's short stable identity: IDs derived from it are valid
// containerd identifiers and interface/netns names whatever the pod is
// called.
func podKey(ref PodRef) string {
	sum := sha256.Sum256([]byte(ref.Namespace + "\x00" + ref.Name + "\x00" + ref.UID))
	return hex.EncodeToString(sum[:8])
}

// sandboxID names the containerd record of a pod's sandbox; "_" never
// appears in a container name (a DNS label), so it can not collide.
func sandboxID(key string) string { return key + "_sandbox" }

func containerID(key, name string) string {
	id := key + "-" + name
	if identifiers.Validate(id) != nil {
		sum := sha256.Sum256([]byte(name))
		id = key + "-" + hex.EncodeToString(sum[:6])
	}
	return id
}

func netnsName(key string) string { return "berth-" + key }

func podLabels(ref PodRef, key, kind string) map[string]string {
	return map[string]string{
		labelKind:         kind,
		labelPodKey:       key,
		labelPodNamespace: ref.Namespace,
		labelPodName:      ref.Name,
		labelPodUID:       ref.UID,
	}
}

func refFromLabels(l map[string]string) PodRef {
	return PodRef{Namespace: l[labelPodNamespace], Name: l[labelPodName], UID: l[labelPodUID]}
}

// specHash tells whether a running container still matches what is asked
// of it.
func specHash(c Container) string {
	b, _ := json.Marshal(struct {
		Spec   any
		Env    []string
		Mounts []Mount
		// omitempty: containers started before the field existed keep
		// their hash, so an upgrade restarts none.
		PodIPEnv []string `json:",omitempty"`
	}{c.Spec, c.Env, c.Mounts, c.PodIPEnv})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
