package agent

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/dns"
	"github.com/berth/berth/nodes/network"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

// runtimePod turns a pod of the store into what the runtime runs: env and
// volumes resolved from the node's assignment, hostPorts collected, its
// names and resolv.conf.
func (a *Agent) runtimePod(asg *api.NodeAssignment, p *state.Pod) (runtime.Pod, error) {
	root, node := a.cfg.DataDir, &a.cfg.Node
	rp := runtime.Pod{
		PodRef:        runtime.PodRef{Namespace: p.Namespace, Name: p.Name, UID: podUID(p)},
		Hostname:      cmp.Or(p.Spec.Hostname, p.Name),
		RestartPolicy: p.Spec.RestartPolicy,
		GracePeriod:   gracePeriod(p),
		ResolvConf:    a.resolvConf(p),
		ImageEvent: func(reason, message string) {
			a.record(p, state.EventNormal, reason, time.Now(), "%s", message)
		},
	}
	for _, h := range p.Spec.HostAliases {
		rp.HostAliases = append(rp.HostAliases, h.IP+"\t"+strings.Join(h.Hostnames, "\t"))
	}
	if p.Spec.Subdomain != "" {
		rp.FQDN = rp.Hostname + "." + p.Spec.Subdomain + "." + p.Namespace + ".svc." + a.cfg.ClusterDomain
	}
	mounts, err := prepareVolumes(root, asg, p)
	if err != nil {
		return rp, err
	}
	rp.RegistryAuth = pullCredentials(asg, p)
	var links []string
	if a.cfg.Services != nil && (p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks) {
		links = serviceEnv(a.cfg.Services(), p.Namespace)
	}
	for i, c := range p.Spec.AllContainers() {
		env, podIPEnv, err := resolveEnv(asg, p, &c, node)
		if err != nil {
			return rp, err
		}
		c.SecurityContext = p.Spec.SecurityContext.Effective(c.SecurityContext)
		rc := runtime.Container{Spec: c, Env: env, PodIPEnv: podIPEnv, ServiceEnv: links}
		if psc := p.Spec.SecurityContext; psc != nil {
			rc.SupplementalGroups = psc.SupplementalGroups
			if psc.FSGroup != nil {
				rc.SupplementalGroups = append(slices.Clip(rc.SupplementalGroups), *psc.FSGroup)
			}
			for _, s := range psc.Sysctls {
				if rp.Sysctls == nil {
					rp.Sysctls = map[string]string{}
				}
				rp.Sysctls[s.Name] = s.Value
			}
		}
		for _, m := range mounts[c.Name] {
			rc.Mounts = append(rc.Mounts, runtime.Mount(m))
		}
		if i < len(p.Spec.InitContainers) {
			rp.InitContainers = append(rp.InitContainers, rc)
			continue
		}
		rp.Containers = append(rp.Containers, rc)
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				rp.HostPorts = append(rp.HostPorts, network.PortMapping{HostPort: port.HostPort, ContainerPort: port.ContainerPort,
					Protocol: strings.ToLower(port.Protocol)})
			}
		}
	}
	return rp, nil
}

// resolvConf is the pod's /etc/resolv.conf as the kubelet writes it for
// its dnsPolicy: with no cluster DNS on this node ClusterFirst falls back
// to the host's resolvers, as the kubelet does without --cluster-dns.
func (a *Agent) resolvConf(p *state.Pod) []byte {
	var cluster []string
	if a.cfg.ClusterDNS != nil {
		if ip := a.cfg.ClusterDNS(); ip != "" {
			cluster = []string{ip}
		}
	}
	return dns.PodResolvConf(dns.PodDNS{Namespace: p.Namespace, Policy: p.Spec.DNSPolicy, Config: p.Spec.DNSConfig}, a.cfg.ClusterDomain, cluster, a.cfg.HostDNS)
}

// pullCredentials reads the pod's image pull secrets in order; as the
// kubelet, one that is missing or unreadable is passed over (the loader
// warned of it) and the image is pulled without it.
func pullCredentials(asg *api.NodeAssignment, p *state.Pod) []objects.RegistryAuth {
	var out []objects.RegistryAuth
	for _, ref := range p.Spec.ImagePullSecrets {
		if s := asg.Secrets[p.Namespace+"/"+ref.Name]; s != nil {
			if auths, err := objects.RegistryAuths(s); err == nil {
				out = append(out, auths...)
			}
		}
	}
	return out
}

// podStatus is the status the agent reports: the runtime's view, the
// error of this sync, and the readiness probes' verdicts (ready, by
// container; absent means not running). prev is the last report, which
// keeps ReadySince across syncs.
func podStatus(p *state.Pod, st *runtime.PodStatus, syncErr error, ready map[string]bool, prev *state.PodStatus, now time.Time) state.PodStatus {
	out := state.PodStatus{Phase: state.PodPending, IP: st.IP}
	var ce *configError
	if errors.As(syncErr, &ce) {
		// Nothing was started: the pod waits for its configuration.
		out.Reason, out.Message = runtime.ReasonCreateConfigError, ce.Error()
		return out
	}
	if initializing(p, st, &out) {
		return out
	}
	allStarted, allReady := true, true
	for _, c := range p.Spec.Containers {
		cs := st.Container(c.Name)
		s := state.ContainerStatus{Name: c.Name, State: runtime.StateWaiting, Reason: runtime.ReasonContainerCreating}
		if cs != nil {
			s = state.ContainerStatus{Name: c.Name, ID: cs.ID, State: cs.State, Reason: cs.Reason, ExitCode: cs.ExitCode, Restarts: cs.Restarts}
			if cs.State == runtime.StateExited && cs.Reason == "" {
				s.Reason = cs.LastReason
			}
			if out.Message == "" && cs.Message != "" && cs.State != runtime.StateRunning {
				out.Message = cs.Message
			}
		}
		s.Ready = s.State == runtime.StateRunning && ready[c.Name]
		if s.State == runtime.StateWaiting && s.Restarts == 0 {
			allStarted = false
		}
		if !s.Ready {
			allReady = false
			if out.Reason == "" && s.Reason != "" {
				out.Reason = s.Reason
			}
		}
		out.Restarts += s.Restarts
		out.Containers = append(out.Containers, s)
	}
	if allStarted {
		// As in Kubernetes, a pod whose containers have all started is
		// Running, even while one of them is in CrashLoopBackOff.
		out.Phase = state.PodRunning
	}
	if phase := ended(p.Spec.RestartPolicy, out.Containers); phase != "" {
		out.Phase, out.Reason = phase, "Completed"
		if phase == state.PodFailed {
			out.Reason = "Error"
		}
		return out
	}
	if syncErr != nil && out.Message == "" {
		out.Message = syncErr.Error()
	}
	out.Ready = allReady && len(p.Spec.Containers) > 0
	if out.Ready {
		out.Reason, out.Message = "", ""
		out.ReadySince = now
		if prev != nil && prev.Ready {
			out.ReadySince = prev.ReadySince
		}
	}
	return out
}

// ended is the phase of a pod whose containers will not run again, as
// the kubelet decides it: under restartPolicy OnFailure or Never, every
// container exited 0 is Succeeded; under Never, every container exited
// and one failed is Failed. Otherwise "": the pod is not over.
func ended(policy string, cs []state.ContainerStatus) state.PodPhase {
	if policy != runtime.RestartOnFailure && policy != runtime.RestartNever {
		return ""
	}
	failed := false
	for _, c := range cs {
		if c.State != runtime.StateExited {
			return ""
		}
		failed = failed || c.ExitCode != 0
	}
	switch {
	case !failed:
		return state.PodSucceeded
	case policy == runtime.RestartNever:
		return state.PodFailed
	}
	return ""
}

// initializing fills out for a pod whose init containers have not all
// succeeded, and reports whether that is so. Its status reads as
// kubectl shows it: Init:done/total while one runs, Init:CrashLoopBackOff
// or Init:Error when one failed; with restartPolicy Never a failed init
// container fails the pod. The other containers wait: PodInitializing.
func initializing(p *state.Pod, st *runtime.PodStatus, out *state.PodStatus) bool {
	init := p.Spec.InitContainers
	if len(init) == 0 || slices.ContainsFunc(p.Spec.Containers, func(c objects.Container) bool { return st.Container(c.Name) != nil }) {
		return false
	}
	done := 0
	for _, c := range init {
		s := state.ContainerStatus{Name: c.Name, State: runtime.StateWaiting, Reason: runtime.ReasonPodInitializing}
		if cs := st.Container(c.Name); cs != nil {
			s = state.ContainerStatus{Name: c.Name, ID: cs.ID, State: cs.State, Reason: cs.Reason, ExitCode: cs.ExitCode, Restarts: cs.Restarts}
			if out.Message == "" && cs.Message != "" && cs.State != runtime.StateRunning {
				out.Message = cs.Message
			}
		}
		succeeded := s.State == runtime.StateExited && s.ExitCode == 0
		switch {
		case succeeded && out.Reason == "":
			done++
		case out.Reason != "":
		case s.Reason == runtime.ReasonCrashLoopBackOff || s.Reason == runtime.ReasonImagePullBackOff || s.Reason == runtime.ReasonErrImagePull:
			out.Reason = "Init:" + s.Reason
		case s.State == runtime.StateExited:
			out.Reason = "Init:Error"
			if p.Spec.RestartPolicy == "Never" {
				out.Phase = state.PodFailed
			}
		default:
			out.Reason = fmt.Sprintf("Init:%d/%d", done, len(init))
		}
		out.Restarts += s.Restarts
		out.InitContainers = append(out.InitContainers, s)
	}
	if out.Reason == "" {
		return false // all succeeded; the others start at the next sync
	}
	for _, c := range p.Spec.Containers {
		out.Containers = append(out.Containers, state.ContainerStatus{Name: c.Name, State: runtime.StateWaiting, Reason: runtime.ReasonPodInitializing})
	}
	return true
}

// hidePaths writes DATA for the node's data dir in a message bound for the
// masters, who show it to every reader: errors of file operations and
// runc's name host paths.
func (a *Agent) hidePaths(msg string) string {
	if a.cfg.NodeDir == "/" {
		return msg
	}
	return strings.ReplaceAll(msg, a.cfg.NodeDir, "DATA")
}
