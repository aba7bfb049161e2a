package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/schemas/objects"
)

// configError is a container whose spec can not be run as written:
// Kubernetes' CreateContainerConfigError.
type configError struct{ error }

// cpuPeriod is the CFS period CPU limits are expressed in, the kubelet's.
const cpuPeriod = 100_000 // µs

// specOpts turns a container of a pod into OCI spec options, on top of
// containerd's default spec (which already gives the container its own
// mount, pid, ipc and uts namespaces, default capabilities and a cgroup
// /<namespace>/<id>).
func (r *Runtime) specOpts(pod Pod, sb *sandbox, c Container, img containerd.Image) ([]oci.SpecOpts, error) {
	s := c.Spec
	var opts []oci.SpecOpts

	env, vars := containerEnv(c, sb.ip)
	expandAll := func(ss []string) []string {
		out := make([]string, len(ss))
		for i, x := range ss {
			out[i] = expand(x, vars)
		}
		return out
	}
	// Process args the Kubernetes way: command replaces the image's
	// Entrypoint, args its Cmd; args alone run after the Entrypoint.
	if len(s.Command) > 0 {
		opts = append(opts, oci.WithImageConfig(img), oci.WithProcessArgs(append(expandAll(s.Command), expandAll(s.Args)...)...))
	} else {
		opts = append(opts, oci.WithImageConfigArgs(img, expandAll(s.Args)))
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if len(env) > 0 {
		opts = append(opts, oci.WithEnv(env))
	}
	opts = append(opts,
		withNonEmptyArgs,
		oci.WithHostname(sb.hostname),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.netns}),
	)

	mounts := []specs.Mount{
		bindMount(filepath.Join(sb.dir, "hosts"), "/etc/hosts", false),
		bindMount(filepath.Join(sb.dir, "hostname"), "/etc/hostname", false),
		// containerd's default spec has no cgroupfs, CRI adds it: programs
		// read their limits there (GOMAXPROCS, JVM heap sizing).
		{Type: "cgroup", Source: "cgroup", Destination: "/sys/fs/cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	if sb.hasResolvConf {
		mounts = append(mounts, bindMount(filepath.Join(sb.dir, "resolv.conf"), "/etc/resolv.conf", false))
	}
	for _, m := range c.Mounts {
		if !filepath.IsAbs(m.HostPath) || !filepath.IsAbs(m.ContainerPath) {
			return nil, configError{fmt.Errorf("mount %s -> %s: paths must be absolute", m.HostPath, m.ContainerPath)}
		}
		mounts = append(mounts, bindMount(m.HostPath, m.ContainerPath, m.ReadOnly))
	}
	opts = append(opts, oci.WithMounts(mounts))
	if len(pod.Sysctls) > 0 {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			maps.Copy(s.Linux.Sysctl, pod.Sysctls) // runc sets them in the container's namespaces
			return nil
		})
	}

	res, err := resourceOpts(s.Resources)
	if err != nil {
		return nil, configError{err}
	}
	opts = append(opts, res...)

	if sc := s.SecurityContext; sc != nil {
		opts = append(opts, securityOpts(sc)...)
	}
	if len(c.SupplementalGroups) > 0 {
		groups := c.SupplementalGroups
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			for _, g := range groups {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
			}
			return nil
		})
	}
	return opts, nil
}

func bindMount(src, dst string, ro bool) specs.Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", "rprivate", mode}}
}

// withNonEmptyArgs fails early, with a message a user understands, where
// runc would fail later with a cryptic one.
func withNonEmptyArgs(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return configError{errors.New("no command: the image has no entrypoint or cmd and the container sets no command")}
	}
	return nil
}

// resourceOpts maps requests and limits onto cgroup settings as the
// kubelet does: cpu request -> shares, cpu limit -> CFS quota, memory
// limit -> memory limit. A memory request only matters to the scheduler.
func resourceOpts(rr objects.ResourceRequirements) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	mem, err := rr.Limits.Memory.Value()
	if err != nil {
		return nil, fmt.Errorf("resources.limits.memory: %w", err)
	}
	if mem > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(mem)))
	}
	cpuLimit, err := rr.Limits.CPU.Milli()
	if err != nil {
		return nil, fmt.Errorf("resources.limits.cpu: %w", err)
	}
	cpuRequest, err := rr.Requests.CPU.Milli()
	if err != nil {
		return nil, fmt.Errorf("resources.requests.cpu: %w", err)
	}
	if cpuRequest == 0 {
		// Kubernetes defaults a missing request to the limit.
		cpuRequest = cpuLimit
	}
	if cpuRequest > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(max(cpuRequest*1024/1000, 2))))
	}
	if cpuLimit > 0 {
		opts = append(opts, oci.WithCPUCFS(max(cpuLimit*cpuPeriod/1000, 1000), cpuPeriod))
	}
	return opts, nil
}

func securityOpts(sc *objects.SecurityContext) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if sc.Privileged != nil && *sc.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	}
	if c := sc.Capabilities; c != nil {
		drop, dropAll := capNames(c.Drop)
		if dropAll {
			opts = append(opts, oci.WithCapabilities(nil))
		} else if len(drop) > 0 {
			opts = append(opts, oci.WithDroppedCapabilities(drop))
		}
		add, addAll := capNames(c.Add)
		if addAll {
			opts = append(opts, oci.WithAllCurrentCapabilities)
		} else if len(add) > 0 {
			opts = append(opts, oci.WithAddedCapabilities(add))
		}
	}
	if sc.RunAsUser != nil {
		// Looks the uid up in the image's /etc/passwd for its group.
		opts = append(opts, oci.WithUserID(uint32(*sc.RunAsUser)))
	}
	if sc.RunAsGroup != nil {
		gid := uint32(*sc.RunAsGroup)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Process.User.GID = gid
			return nil
		})
	}
	if sc.RunAsUser != nil {
		// The groups are the user's own, from the image's /etc/group, and
		// its primary group: not the image user's (root's, gid 0, which
		// the image config gave the process), as the kubelet sets them.
		opts = append(opts, oci.WithAdditionalGIDs(strconv.FormatInt(*sc.RunAsUser, 10)))
	}
	if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Process.User.UID == 0 {
				return configError{errors.New("container has runAsNonRoot and image will run as root")}
			}
			return nil
		})
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if p := sc.SeccompProfile; p != nil && p.Type == "RuntimeDefault" && (sc.Privileged == nil || !*sc.Privileged) {
		// As the kubelet: a privileged container runs unconfined.
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	return opts
}

// capNames turns Kubernetes capability names (NET_ADMIN) into the OCI
// spec's (CAP_NET_ADMIN) and reports whether ALL was named.
func capNames(names []string) (out []string, all bool) {
	for _, n := range names {
		n = strings.ToUpper(n)
		if n == "ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		out = append(out, n)
	}
	return out, all
}

// lastWins keeps one NAME=value per name, the last, at the first one's
// place: oci.WithEnv would keep both of two new entries of one name, and
// a process would read the first.
func lastWins(env []string) []string {
	at := map[string]int{}
	var out []string
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if i, ok := at[name]; ok {
			out[i] = e
			continue
		}
		at[name] = len(out)
		out = append(out, e)
	}
	return out
}

// containerEnv is the container's environment, the Services' variables
// first, each value with its $(VAR) references expanded as the kubelet
// expands them (by what is defined before it; the pod IP's variables are
// known from the start), and the variables for command and args.
func containerEnv(c Container, podIP string) (env []string, vars map[string]string) {
	vars = map[string]string{}
	for _, name := range c.PodIPEnv {
		vars[name] = podIP
	}
	for _, e := range lastWins(slices.Concat(c.ServiceEnv, c.Env)) {
		name, value, _ := strings.Cut(e, "=")
		value = expand(value, vars)
		vars[name] = value
		env = append(env, name+"="+value)
	}
	for _, name := range c.PodIPEnv {
		env = append(env, name+"="+podIP)
	}
	return lastWins(env), vars
}

// expand replaces $(NAME) by the variable's value, as Kubernetes does in
// env values, command and args: $$ is a literal $, and a reference to a
// variable not defined (or not closed) stays as written.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
