package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/nodes/network"
	"github.com/berth/berth/schemas/names"
)

// reasonUnknown: containerd did not answer about the container.
const reasonUnknown = "Unknown"

// DefaultGracePeriod is Kubernetes' terminationGracePeriodSeconds default.
const DefaultGracePeriod = 30 * time.Second

// sandbox is a pod's network namespace and the files its containers share,
// recorded as a containerd container without a task.
type sandbox struct {
	key           string
	ref           PodRef
	netns         string
	ip            string
	dir           string
	hostname      string
	fqdn          string   // only while the sandbox is made: /etc/hosts is written once
	aliases       []string // the same
	hasResolvConf bool
	restartPolicy string
	created       time.Time
	// undo takes back a sandbox being created (nil for one loaded).
	undo func(context.Context)
}

func (r *Runtime) podsDir() string { return filepath.Join(r.dataDir, "pods") }

func (r *Runtime) podDir(key string) string { return filepath.Join(r.podsDir(), key) }

// logName is a container's log file, relative to the pods directory. The
// container's name must be a DNS label, whoever gives it: then it is one
// file name, never a path that leads elsewhere.
func logName(key, container string) (string, error) {
	if err := names.DNSLabel(container); err != nil {
		return "", fmt.Errorf("runtime: container name %w", err)
	}
	return filepath.Join(key, "logs", container+".log"), nil
}

// LogPath is the host file that keeps a container's stdout and stderr,
// which Logs reads.
func (r *Runtime) LogPath(pod PodRef, container string) (string, error) {
	return r.logPath(podKey(pod), container)
}

func (r *Runtime) logPath(key, container string) (string, error) {
	name, err := logName(key, container)
	if err != nil {
		return "", err
	}
	return filepath.Join(r.podsDir(), name), nil
}

func validatePod(pod Pod) error {
	if pod.Namespace == "" || pod.Name == "" {
		return errors.New("runtime: pod needs a namespace and a name")
	}
	switch pod.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fmt.Errorf("runtime: pod %s: unknown restartPolicy %q", pod.PodRef, pod.RestartPolicy)
	}
	seen := map[string]bool{}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		n := c.Spec.Name
		if err := names.DNSLabel(n); err != nil {
			return fmt.Errorf("runtime: pod %s: container name %q %w", pod.PodRef, n, err)
		}
		if seen[n] {
			return fmt.Errorf("runtime: pod %s: two containers named %q", pod.PodRef, n)
		}
		seen[n] = true
	}
	return nil
}

// EnsurePod brings the pod to running: it sets up the pod's network once,
// pulls images, creates and starts containers that do not exist yet, and
// restarts exited ones when the restart policy and back-off allow. It is
// idempotent and adopts whatever an earlier agent created for the pod, so
// the agent calls it on every sync.
//
// A new pod's images are pulled and its containers created (snapshot and
// record) while its network is set up; their processes start only once
// the network is ready, as Kubernetes guarantees.
//
// The status is filled in whatever happens. The error reports what failed
// in this call: the sandbox (network) or, as *ContainerError, a pull,
// create or start. A container merely waiting out its back-off is not an
// error.
func (r *Runtime) EnsurePod(ctx context.Context, pod Pod) (PodStatus, error) {
	ctx = r.withLog(ctx)
	status := PodStatus{PodRef: pod.PodRef}
	if err := validatePod(pod); err != nil {
		return status, err
	}
	if pod.RestartPolicy == "" {
		pod.RestartPolicy = RestartAlways
	}
	if pod.GracePeriod <= 0 {
		pod.GracePeriod = DefaultGracePeriod
	}
	if pod.Hostname == "" {
		pod.Hostname = pod.Name
	}
	key := podKey(pod.PodRef)
	defer r.lockPod(key)()

	sb, err := r.loadSandbox(ctx, pod, key)
	if err != nil {
		return status, err
	}
	fresh := sb == nil
	if fresh {
		if sb, err = r.newSandbox(ctx, pod, key); err != nil {
			return status, err
		}
	}
	existing, err := r.podContainers(ctx, key)
	if err != nil {
		if fresh {
			sb.undo(ctx)
		}
		return status, err
	}

	// Init containers run one at a time, each to completion, before the
	// others: this call works on the next one that has not succeeded, or on
	// the pod's containers once all have.
	batch, initDone, next := pod.Containers, []ContainerStatus(nil), -1
	if len(pod.InitContainers) > 0 {
		initDone, next = r.nextInit(ctx, pod, existing)
	}
	if next >= 0 {
		c := pod.InitContainers[next]
		c.init = true
		batch = []Container{c}
	}

	type prepared struct {
		cs   ContainerStatus
		cont containerd.Container // to start; nil when there is nothing to start
		err  error
	}
	preps := make([]prepared, len(batch))
	if fresh {
		// The network and the containers at once: CNI mostly waits on
		// plugin processes, the containers on containerd.
		var wg sync.WaitGroup
		for i, c := range batch {
			if len(c.PodIPEnv) > 0 {
				continue // its environment needs the address: after the network
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := &preps[i]
				p.cs, p.cont, p.err = r.prepareContainer(ctx, pod, sb, c, existing[c.Spec.Name])
			}()
		}
		netErr := r.attachSandbox(ctx, pod, sb)
		wg.Wait()
		if netErr != nil {
			// Nothing ran yet: take back the containers, then the network.
			bg := context.WithoutCancel(ctx)
			for _, p := range preps {
				if p.cont != nil {
					if err := r.removeContainer(bg, p.cont, 0); err != nil {
						r.log.Warn("remove container of a pod without network", "pod", pod.PodRef, "container", p.cont.ID(), "err", err)
					}
				}
			}
			sb.undo(ctx)
			return status, netErr
		}
		for i, c := range batch {
			if len(c.PodIPEnv) > 0 {
				p := &preps[i]
				p.cs, p.cont, p.err = r.prepareContainer(ctx, pod, sb, c, existing[c.Spec.Name])
			}
		}
	} else {
		for i, c := range batch {
			p := &preps[i]
			p.cs, p.cont, p.err = r.prepareContainer(ctx, pod, sb, c, existing[c.Spec.Name])
		}
	}
	status.IP, status.NetNS, status.Created = sb.ip, sb.netns, sb.created

	var errs []error
	statuses := &status.Containers
	if next >= 0 {
		status.InitContainers = initDone
		statuses = &status.InitContainers
	}
	for i, c := range batch {
		cs, err := preps[i].cs, preps[i].err
		if err == nil && preps[i].cont != nil {
			cs, err = r.startContainer(ctx, sb.key, preps[i].cont, cs)
			if err == nil {
				err = r.failedPostStart(ctx, pod, sb, c, preps[i].cont, &cs)
			}
		}
		*statuses = append(*statuses, cs)
		if err != nil {
			errs = append(errs, &ContainerError{Pod: pod.PodRef, Container: c.Spec.Name, Reason: cs.Reason, Err: err})
		}
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		delete(existing, c.Spec.Name)
	}
	// Containers the pod no longer has: pods are immutable in berth, so
	// this only happens when the agent's idea of a pod changed under us.
	for name, c := range existing {
		r.log.Info("removing container not in pod spec", "pod", pod.PodRef, "container", name)
		if err := r.removeContainer(ctx, c.c, pod.GracePeriod); err != nil {
			errs = append(errs, err)
		}
	}
	return status, errors.Join(errs...)
}

// nextInit finds the first init container that has not succeeded, and the
// statuses of those before it; -1 once all have, or once any of the pod's
// other containers exists (the kubelet's rule: init containers removed
// since do not run again).
func (r *Runtime) nextInit(ctx context.Context, pod Pod, existing map[string]record) ([]ContainerStatus, int) {
	for _, c := range pod.Containers {
		if existing[c.Spec.Name].c != nil {
			return nil, -1
		}
	}
	var done []ContainerStatus
	for i, c := range pod.InitContainers {
		rec := existing[c.Spec.Name]
		if rec.c == nil {
			return done, i
		}
		cs := r.containerStatus(ctx, rec)
		if cs.State != StateExited || cs.ExitCode != 0 || rec.info.Labels[labelSpecHash] != specHash(c) {
			return done, i
		}
		done = append(done, cs)
	}
	return done, -1
}

// restartPolicy is the policy for c: an init container that succeeded is
// done, so Always means OnFailure for it.
func restartPolicy(pod string, init bool) string {
	if init && pod == RestartAlways {
		return RestartOnFailure
	}
	return pod
}

// loadSandbox returns the pod's sandbox, or nil when it has none yet (or
// had one whose network namespace is gone, which it removes).
func (r *Runtime) loadSandbox(ctx context.Context, pod Pod, key string) (*sandbox, error) {
	id := sandboxID(key)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: pod %s: %w", pod.PodRef, err)
	}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, err
	}
	sb := r.sandboxFromLabels(info.Labels)
	if network.IsNetNS(sb.netns) {
		return sb, nil
	}
	// The namespace is gone (the node rebooted): so are the containers
	// that were in it. Start the pod over.
	r.log.Warn("pod network namespace lost, recreating pod", "pod", pod.PodRef, "netns", sb.netns)
	if err := r.removePod(ctx, key, 0); err != nil {
		return nil, err
	}
	return nil, nil
}

// newSandbox creates a new pod's network namespace and the files its
// containers share but /etc/hosts (which needs the address): everything
// containers need to be created. attachSandbox completes it.
func (r *Runtime) newSandbox(ctx context.Context, pod Pod, key string) (*sandbox, error) {
	start := r.now()
	nsPath, err := r.net.CreateNetNS(netnsName(key))
	if err != nil {
		return nil, fmt.Errorf("runtime: pod %s: %w", pod.PodRef, err)
	}
	sb := &sandbox{
		key: key, ref: pod.PodRef, netns: nsPath, dir: r.podDir(key),
		hostname: pod.Hostname, fqdn: pod.FQDN, aliases: pod.HostAliases, restartPolicy: pod.RestartPolicy, created: start,
		undo: r.undoSandbox(key, nsPath),
	}
	if err := r.writePodFiles(sb, pod.ResolvConf); err != nil {
		sb.undo(ctx)
		return nil, fmt.Errorf("runtime: pod %s: %w", pod.PodRef, err)
	}
	return sb, nil
}

// undoSandbox returns what takes a new sandbox back: its network
// attachment, namespace and files.
func (r *Runtime) undoSandbox(key, nsPath string) func(context.Context) {
	return func(ctx context.Context) {
		bg := context.WithoutCancel(ctx)
		_ = r.net.Teardown(bg, key, nsPath)
		_ = r.net.DeleteNetNS(netnsName(key))
		_ = os.RemoveAll(r.podDir(key))
	}
}

// attachSandbox attaches a new sandbox to the pod network (CNI), writes
// its /etc/hosts and records it in containerd. On failure the caller
// undoes the sandbox.
func (r *Runtime) attachSandbox(ctx context.Context, pod Pod, sb *sandbox) error {
	ip, err := r.net.Setup(ctx, sb.key, sb.netns, pod.HostPorts...)
	if err != nil {
		return fmt.Errorf("runtime: pod %s: %w", pod.PodRef, err)
	}
	sb.ip = ip
	if err := r.writeHosts(sb); err != nil {
		return fmt.Errorf("runtime: pod %s: %w", pod.PodRef, err)
	}
	labels := podLabels(pod.PodRef, sb.key, kindSandbox)
	labels[labelNetNS] = sb.netns
	labels[labelIP] = ip
	labels[labelRestartPolicy] = pod.RestartPolicy
	labels[labelCreated] = formatTime(sb.created)
	labels[labelHostname] = pod.Hostname
	_, err = r.client.NewContainer(ctx, sandboxID(sb.key),
		containerd.WithContainerLabels(labels),
		containerd.WithRuntime(plugin.RuntimeRuncV2, nil),
		// containerd requires a spec on every container; the sandbox record
		// never runs, so an empty one does.
		containerd.WithSpec(&oci.Spec{Version: specs.Version}))
	if err != nil {
		return fmt.Errorf("runtime: pod %s: record sandbox: %w", pod.PodRef, err)
	}
	r.log.Info("pod sandbox ready", "pod", pod.PodRef, "ip", ip, "netns", sb.netns, "took", r.now().Sub(sb.created).Round(time.Millisecond))
	return nil
}

func (r *Runtime) sandboxFromLabels(l map[string]string) *sandbox {
	key := l[labelPodKey]
	sb := &sandbox{
		key: key, ref: refFromLabels(l), netns: l[labelNetNS], ip: l[labelIP], dir: r.podDir(key),
		hostname: l[labelHostname], restartPolicy: l[labelRestartPolicy], created: parseTime(l[labelCreated]),
	}
	if sb.netns == "" {
		sb.netns = r.net.NetNSPath(netnsName(key))
	}
	_, err := os.Stat(filepath.Join(sb.dir, "resolv.conf"))
	sb.hasResolvConf = err == nil
	return sb
}

// writeHosts writes the /etc/hosts the pod's containers share, once the
// pod has its address; containers bind-mount it when they start.
func (r *Runtime) writeHosts(sb *sandbox) error {
	names := sb.hostname
	if sb.fqdn != "" {
		names = sb.fqdn + "\t" + sb.hostname
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", sb.ip, names)
	if len(sb.aliases) > 0 {
		hosts += "\n# Entries added by HostAliases.\n" + strings.Join(sb.aliases, "\n") + "\n"
	}
	return os.WriteFile(filepath.Join(sb.dir, "hosts"), []byte(hosts), 0o644)
}

// writePodFiles writes the /etc/hostname and /etc/resolv.conf the pod's
// containers share, and makes its log directory.
func (r *Runtime) writePodFiles(sb *sandbox, resolvConf []byte) error {
	if err := os.MkdirAll(filepath.Join(sb.dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sb.dir, "hostname"), []byte(sb.hostname+"\n"), 0o644); err != nil {
		return err
	}
	// Without one of its own the pod resolves names as the host does, as
	// with the kubelet's default --resolv-conf.
	b := resolvConf
	if b == nil {
		var err error
		b, err = os.ReadFile("/etc/resolv.conf")
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(sb.dir, "resolv.conf"), b, 0o644); err != nil {
		return err
	}
	sb.hasResolvConf = true
	return nil
}

// record is a containerd container of a pod with its metadata.
type record struct {
	c    containerd.Container
	info containers.Container
}

// podContainers returns the pod's containers (not its sandbox) by name.
func (r *Runtime) podContainers(ctx context.Context, key string) (map[string]record, error) {
	list, err := r.client.Containers(ctx, fmt.Sprintf(`labels.%q==%q,labels.%q==%q`, labelPodKey, key, labelKind, kindContainer))
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers: %w", err)
	}
	out := map[string]record{}
	for _, c := range list {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, err
		}
		out[info.Labels[labelContainerName]] = record{c, info}
	}
	return out, nil
}

// prepareContainer does all that bringing one container to running takes
// but starting its process: it decides what to do with an existing one
// (keep, replace, restart after back-off), pulls the image and creates the
// container. It returns the container to start, or nil with the status
// when there is nothing to start (running, backing off, or failed).
func (r *Runtime) prepareContainer(ctx context.Context, pod Pod, sb *sandbox, c Container, rec record) (ContainerStatus, containerd.Container, error) {
	name := c.Spec.Name
	id := containerID(sb.key, name)
	hash := specHash(c)
	restarts := 0
	if rec.c != nil {
		restarts = atoi(rec.info.Labels[labelRestarts])
		cs := r.containerStatus(ctx, rec)
		switch {
		case rec.info.Labels[labelSpecHash] != hash:
			r.log.Info("container spec changed, replacing it", "pod", pod.PodRef, "container", name)
			if err := r.removeContainer(ctx, rec.c, pod.GracePeriod); err != nil {
				return cs, nil, err
			}
		case cs.State == StateRunning:
			return cs, nil, nil
		case cs.State == StateExited:
			if !r.restartDue(&cs, restartPolicy(pod.RestartPolicy, c.init)) {
				return cs, nil, nil
			}
			r.log.Info("restarting container", "pod", pod.PodRef, "container", name, "exitCode", cs.ExitCode, "restarts", restarts+1)
			if err := r.removeContainer(ctx, rec.c, pod.GracePeriod); err != nil {
				return cs, nil, err
			}
			restarts++
		case cs.Reason == reasonUnknown:
			// containerd could not tell; never replace a container that
			// may well be running.
			return cs, nil, fmt.Errorf("container state unknown: %s", cs.Message)
		default:
			// Created but never started (the agent died in between):
			// start over with a fresh container.
			if err := r.removeContainer(ctx, rec.c, pod.GracePeriod); err != nil {
				return cs, nil, err
			}
		}
	}

	cs := ContainerStatus{Name: name, Image: c.Spec.Image, State: StateWaiting, Reason: ReasonContainerCreating, Restarts: restarts}
	if pf := r.pullFailure(sb.key, name, c.Spec.Image); pf != nil {
		if wait := r.Backoff(pf.count); r.now().Before(pf.last.Add(wait)) {
			cs.Reason, cs.Message = ReasonImagePullBackOff, fmt.Sprintf("back-off pulling image %q: %v", c.Spec.Image, pf.err)
			return cs, nil, nil
		}
	}
	tell := pod.ImageEvent
	if tell == nil {
		tell = func(string, string) {}
	}
	img, err := r.ensureImage(ctx, c.Spec.Image, c.Spec.ImagePullPolicy, pod.RegistryAuth, tell)
	if err != nil {
		var ie *imageError
		cs.Reason = ReasonErrImagePull
		if errors.As(err, &ie) {
			cs.Reason = ie.reason
		}
		cs.Message = err.Error()
		r.notePullFailure(sb.key, name, c.Spec.Image, err)
		r.log.Warn("image pull failed", "pod", pod.PodRef, "container", name, "image", c.Spec.Image, "err", err)
		return cs, nil, err
	}
	r.clearPullFailure(sb.key, name)
	cs.ImageRef = img.Target().Digest.String()

	cont, err := r.createContainer(ctx, pod, sb, c, img, id, hash, restarts)
	if err != nil {
		var ce configError
		cs.Reason = ReasonCreateError
		if errors.As(err, &ce) {
			cs.Reason = ReasonCreateConfigError
		}
		cs.Message = err.Error()
		return cs, nil, err
	}
	return cs, cont, nil
}

func (r *Runtime) createContainer(ctx context.Context, pod Pod, sb *sandbox, c Container, img containerd.Image, id, hash string, restarts int) (containerd.Container, error) {
	snapshots := r.client.SnapshotService(r.snapshotter)
	// A snapshot left by a create that died half way would block this one.
	_ = snapshots.Remove(ctx, id)
	opts, err := r.specOpts(pod, sb, c, img)
	if err != nil {
		return nil, err
	}
	labels := podLabels(pod.PodRef, sb.key, kindContainer)
	labels[labelContainerName] = c.Spec.Name
	labels[labelRestarts] = fmt.Sprint(restarts)
	labels[labelSpecHash] = hash
	labels[labelImage] = c.Spec.Image
	if c.init {
		labels[labelInit] = "true"
	}
	if lc := c.Spec.Lifecycle; lc != nil && lc.PreStop != nil {
		if labels[labelPreStop], err = preStopLabel(c); err != nil {
			return nil, err
		}
	}
	cont, err := r.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(labels),
		containerd.WithRuntime(plugin.RuntimeRuncV2, nil))
	if err != nil {
		_ = snapshots.Remove(context.WithoutCancel(ctx), id)
		var ce configError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, fmt.Errorf("create container: %w", err)
	}
	return cont, nil
}

// startContainer creates the container's task (runc create) and starts it.
// A failure here is the process failing to start (a missing binary, say):
// it is recorded on the container, so the status survives agent restarts,
// and the container counts as exited with code 128, as Kubernetes does.
func (r *Runtime) startContainer(ctx context.Context, key string, cont containerd.Container, cs ContainerStatus) (ContainerStatus, error) {
	cs.ID = cont.ID()
	logPath, err := r.logPath(key, cs.Name)
	if err != nil {
		return cs, err
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return cs, err
	}
	task, err := cont.NewTask(ctx, cio.LogFile(logPath))
	if err == nil {
		if err = task.Start(ctx); err != nil {
			_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		}
	}
	now := r.now()
	if err != nil {
		msg := startErrorMessage(err)
		_, _ = cont.SetLabels(context.WithoutCancel(ctx), map[string]string{
			labelStartError: truncate(msg, maxLabelMessage),
			labelFinishedAt: formatTime(now),
		})
		cs.State, cs.Reason, cs.Message, cs.ExitCode, cs.FinishedAt = StateExited, ReasonStartError, msg, 128, now
		r.log.Warn("container failed to start", "container", cont.ID(), "err", msg)
		return cs, errors.New(msg)
	}
	if _, err := cont.SetLabels(ctx, map[string]string{labelStartedAt: formatTime(now)}); err != nil {
		r.log.Warn("label container", "container", cont.ID(), "err", err)
	}
	cs.State, cs.Reason, cs.Message, cs.PID, cs.StartedAt = StateRunning, "", "", task.Pid(), now
	r.log.Info("container started", "container", cont.ID(), "pid", cs.PID)
	return cs, nil
}

// startErrorMessage strips the layers of gRPC and shim wrapping from a
// runc failure down to what went wrong, e.g. `exec: "nope": executable
// file not found in $PATH`.
func startErrorMessage(err error) string {
	msg := errdefs.FromGRPC(err).Error()
	if i := strings.LastIndex(msg, "runc create failed: "); i >= 0 {
		msg = msg[i+len("runc create failed: "):]
	}
	return strings.TrimSuffix(strings.TrimSpace(msg), ": unknown")
}

// containerStatus reads a container's state from containerd and its labels.
func (r *Runtime) containerStatus(ctx context.Context, rec record) ContainerStatus {
	l := rec.info.Labels
	cs := ContainerStatus{
		Name:      l[labelContainerName],
		ID:        rec.info.ID,
		Image:     l[labelImage],
		Restarts:  atoi(l[labelRestarts]),
		StartedAt: parseTime(l[labelStartedAt]),
	}
	if img, err := rec.c.Image(ctx); err == nil {
		cs.ImageRef = img.Target().Digest.String()
	}
	task, err := rec.c.Task(ctx, nil)
	if err != nil {
		if msg := l[labelStartError]; msg != "" {
			cs.State, cs.Reason, cs.Message, cs.ExitCode = StateExited, ReasonStartError, msg, 128
			cs.FinishedAt = parseTime(l[labelFinishedAt])
			return cs
		}
		if !errdefs.IsNotFound(err) {
			cs.State, cs.Reason, cs.Message = StateWaiting, reasonUnknown, err.Error()
			return cs
		}
		cs.State, cs.Reason = StateWaiting, ReasonContainerCreating
		return cs
	}
	st, err := task.Status(ctx)
	if err != nil {
		cs.State, cs.Reason, cs.Message = StateWaiting, reasonUnknown, err.Error()
		return cs
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		cs.State, cs.PID = StateRunning, task.Pid()
	case containerd.Stopped:
		cs.State, cs.ExitCode, cs.FinishedAt = StateExited, int(st.ExitStatus), st.ExitTime
		cs.Reason = ReasonCompleted
		if st.ExitStatus != 0 {
			cs.Reason = ReasonError
		}
		if cs.FinishedAt.IsZero() {
			cs.FinishedAt = r.now()
		}
	default: // Created: runc create ran, start did not.
		cs.State, cs.Reason = StateWaiting, ReasonContainerCreating
	}
	return cs
}

// restartDue applies the restart policy and back-off to an exited
// container. When it must wait, cs becomes waiting in CrashLoopBackOff.
func (r *Runtime) restartDue(cs *ContainerStatus, policy string) bool {
	if cs.State != StateExited {
		return false
	}
	switch policy {
	case RestartNever:
		return false
	case RestartOnFailure:
		if cs.ExitCode == 0 {
			return false
		}
	}
	delay := r.Backoff(cs.Restarts)
	if !cs.StartedAt.IsZero() && cs.FinishedAt.Sub(cs.StartedAt) >= 2*r.backoffMax {
		// It ran well for a long time: forget the back-off, as the kubelet
		// forgets back-off entries after twice the cap.
		delay = 0
	}
	next := cs.FinishedAt.Add(delay)
	if !r.now().Before(next) {
		return true
	}
	detail := fmt.Sprintf("exit code %d", cs.ExitCode)
	if cs.Reason == ReasonStartError {
		detail = cs.Message
	}
	cs.LastReason = cs.Reason
	cs.State, cs.Reason, cs.NextRestart = StateWaiting, ReasonCrashLoopBackOff, next
	cs.Message = fmt.Sprintf("back-off %s restarting failed container %s: last run: %s: %s", delay, cs.Name, cs.LastReason, detail)
	return false
}

// Backoff is the delay before restarting a container that has restarted
// `restarts` times already: none for the first restart, then 10 s, 20 s,
// 40 s, ... capped at 5 min, as the kubelet does.
func Backoff(restarts int) time.Duration {
	return retry.Backoff{Base: DefaultBackoffBase, Max: DefaultBackoffMax}.Delay(restarts)
}

// Backoff is the package Backoff with this runtime's base and cap.
func (r *Runtime) Backoff(restarts int) time.Duration {
	return retry.Backoff{Base: r.backoffBase, Max: r.backoffMax}.Delay(restarts)
}

func (r *Runtime) pullFailure(key, name, image string) *pullFailure {
	r.mu.Lock()
	defer r.mu.Unlock()
	pf := r.pulls[key+"/"+name]
	if pf == nil || pf.image != image {
		return nil
	}
	return pf
}

func (r *Runtime) notePullFailure(key, name, image string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pf := r.pulls[key+"/"+name]
	if pf == nil || pf.image != image {
		pf = &pullFailure{image: image}
		r.pulls[key+"/"+name] = pf
	}
	pf.count++
	pf.last, pf.err = r.now(), err
}

func (r *Runtime) clearPullFailure(key, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pulls, key+"/"+name)
}

func (r *Runtime) clearPullFailures(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.pulls {
		if strings.HasPrefix(k, key+"/") {
			delete(r.pulls, k)
		}
	}
}

// StopPod stops the pod's containers (SIGTERM, then SIGKILL after grace,
// all containers at once), deletes them with their snapshots, detaches the
// pod from the network and removes its namespace and files. Stopping a pod
// that is already gone succeeds.
func (r *Runtime) StopPod(ctx context.Context, pod PodRef, grace time.Duration) error {
	ctx = r.withLog(ctx)
	key := podKey(pod)
	defer r.lockPod(key)()
	start := r.now()
	if err := r.removePod(ctx, key, grace); err != nil {
		return fmt.Errorf("runtime: stop pod %s: %w", pod, err)
	}
	r.clearPullFailures(key)
	r.log.Info("pod stopped", "pod", pod, "took", r.now().Sub(start).Round(time.Millisecond))
	return nil
}

// StopContainer stops one container's process (SIGTERM, SIGKILL after
// grace) and leaves the container in place, so that the next EnsurePod
// restarts it under the pod's restart policy and back-off: what the
// kubelet does when a liveness probe fails.
func (r *Runtime) StopContainer(ctx context.Context, pod PodRef, container string, grace time.Duration) error {
	ctx = r.withLog(ctx)
	key := podKey(pod)
	defer r.lockPod(key)()
	c, err := r.client.LoadContainer(ctx, containerID(key, container))
	if err != nil {
		return fmt.Errorf("runtime: stop container %s/%s: %w", pod, container, err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime: stop container %s/%s: %w", pod, container, err)
	}
	if err := r.stop(ctx, c, task, grace); err != nil {
		return fmt.Errorf("runtime: stop container %s/%s: %w", pod, container, err)
	}
	return nil
}

func (r *Runtime) removePod(ctx context.Context, key string, grace time.Duration) error {
	recs, err := r.podContainers(ctx, key)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.removeContainer(ctx, rec.c, grace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		// Keep the network while containers may still be in it.
		return errors.Join(errs...)
	}

	netns := r.net.NetNSPath(netnsName(key))
	sbc, err := r.client.LoadContainer(ctx, sandboxID(key))
	if err == nil {
		if info, err := sbc.Info(ctx, containerd.WithoutRefreshedMetadata); err == nil && info.Labels[labelNetNS] != "" {
			netns = info.Labels[labelNetNS]
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if err := r.net.Teardown(ctx, key, netns); err != nil {
		return err
	}
	if err := r.net.DeleteNetNS(filepath.Base(netns)); err != nil {
		return err
	}
	if sbc != nil {
		if err := sbc.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return os.RemoveAll(r.podDir(key))
}

// removeContainer stops a container's task, SIGTERM first and SIGKILL
// after grace, then deletes the task, the container and its snapshot.
func (r *Runtime) removeContainer(ctx context.Context, c containerd.Container, grace time.Duration) error {
	task, err := c.Task(ctx, nil)
	switch {
	case err == nil:
		if err := r.stop(ctx, c, task, grace); err != nil {
			return fmt.Errorf("container %s: %w", c.ID(), err)
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: delete task: %w", c.ID(), err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: delete: %w", c.ID(), err)
	}
	return nil
}

func stopTask(ctx context.Context, task containerd.Task, grace time.Duration) error {
	st, err := task.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status == containerd.Stopped || st.Status == containerd.Created {
		return nil
	}
	// Wait before signalling, or the exit could be missed.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := task.Wait(waitCtx)
	if err != nil {
		return err
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("SIGTERM: %w", err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("task did not exit after SIGKILL")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ListPods returns every pod the runtime finds in its containerd namespace,
// whoever created it, with its containers' states: after an agent restart
// this is how the agent learns what already runs.
func (r *Runtime) ListPods(ctx context.Context) ([]PodStatus, error) {
	return r.list(ctx, fmt.Sprintf(`labels.%q`, labelPodKey))
}

// Status returns one pod's status; ok is false when the runtime has
// nothing of the pod.
func (r *Runtime) Status(ctx context.Context, pod PodRef) (status PodStatus, ok bool, err error) {
	pods, err := r.list(ctx, fmt.Sprintf(`labels.%q==%q`, labelPodKey, podKey(pod)))
	if err != nil || len(pods) == 0 {
		return PodStatus{PodRef: pod}, false, err
	}
	return pods[0], true, nil
}

func (r *Runtime) list(ctx context.Context, filter string) ([]PodStatus, error) {
	ctx = r.withLog(ctx)
	list, err := r.client.Containers(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers: %w", err)
	}
	pods := map[string]*PodStatus{}
	policies := map[string]string{}
	var recs []record
	for _, c := range list {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, err
		}
		l := info.Labels
		key := l[labelPodKey]
		p := pods[key]
		if p == nil {
			p = &PodStatus{PodRef: refFromLabels(l)}
			pods[key] = p
		}
		if l[labelKind] == kindSandbox {
			sb := r.sandboxFromLabels(l)
			p.IP, p.NetNS, p.Created = sb.ip, sb.netns, sb.created
			policies[key] = sb.restartPolicy
			continue
		}
		recs = append(recs, record{c, info})
	}
	for _, rec := range recs {
		key := rec.info.Labels[labelPodKey]
		cs := r.containerStatus(ctx, rec)
		policy := policies[key]
		if policy == "" {
			policy = RestartAlways
		}
		init := rec.info.Labels[labelInit] == "true"
		r.restartDue(&cs, restartPolicy(policy, init))
		if init {
			pods[key].InitContainers = append(pods[key].InitContainers, cs)
		} else {
			pods[key].Containers = append(pods[key].Containers, cs)
		}
	}
	r.mu.Lock()
	for k, pf := range r.pulls {
		key, name, _ := strings.Cut(k, "/")
		if p := pods[key]; p != nil && p.Container(name) == nil {
			p.Containers = append(p.Containers, ContainerStatus{
				Name: name, Image: pf.image, State: StateWaiting, Reason: ReasonImagePullBackOff, Message: pf.err.Error(),
			})
		}
	}
	r.mu.Unlock()

	out := make([]PodStatus, 0, len(pods))
	for _, p := range pods {
		for _, list := range [][]ContainerStatus{p.InitContainers, p.Containers} {
			slices.SortFunc(list, func(a, b ContainerStatus) int { return strings.Compare(a.Name, b.Name) })
		}
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b PodStatus) int {
		return strings.Compare(a.Namespace+"/"+a.Name+"/"+a.UID, b.Namespace+"/"+b.Name+"/"+b.UID)
	})
	return out, nil
}
