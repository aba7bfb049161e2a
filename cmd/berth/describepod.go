package main

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// The pod and its containers as kubectl describe writes them, for a pod
// and, without their state, for a workload's pod template. This is the
// one place berth words a container's probes, environment, resources and
// mounts.

func (d *describer) pod(it item) error {
	p := it.api.(state.Pod)
	k := it.kube.(kubeObject)
	s := status(k)
	d.w.write(level0, "Name:\t%s\n", p.Name)
	d.w.write(level0, "Namespace:\t%s\n", p.Namespace)
	d.w.write(level0, "Service Account:\t%s\n", cmp.Or(p.Spec.ServiceAccountName, "default"))
	node := "<none>"
	if p.NodeName != "" {
		node = p.NodeName
		if ip, _ := s["hostIP"].(string); ip != "" {
			node += "/" + ip
		}
	}
	d.w.write(level0, "Node:\t%s\n", node)
	d.w.write(level0, "Start Time:\t%s\n", describeTime(p.Created))
	d.labels(level0, "Labels", p.Labels)
	d.annotations(level0, "Annotations", p.Annotations)
	if p.Terminating {
		d.w.write(level0, "Status:\tTerminating\n")
	} else {
		d.w.write(level0, "Status:\t%s\n", podPhase(p))
	}
	if p.Status.Reason != "" {
		d.w.write(level0, "Reason:\t%s\n", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.w.write(level0, "Message:\t%s\n", oneLine(p.Status.Message))
	}
	d.w.write(level0, "IP:\t%s\n", p.Status.IP)
	if p.Status.IP == "" {
		d.w.write(level0, "IPs:\t<none>\n")
	} else {
		d.w.write(level0, "IPs:\n")
		d.w.write(level1, "IP:\t%s\n", p.Status.IP)
	}
	for _, o := range k.Metadata.OwnerReferences {
		d.w.write(level0, "Controlled By:\t%s/%s\n", o.Kind, o.Name)
	}
	env := podFields(p, s)
	if len(p.Spec.InitContainers) > 0 {
		d.containers("Init Containers", p.Spec.InitContainers, p.Status.InitContainers, env, "")
	}
	d.containers("Containers", p.Spec.Containers, p.Status.Containers, env, "")
	d.conditions(s["conditions"].([]condition), false, false)
	d.volumes(p.Spec.Volumes, "")
	d.w.write(level0, "QoS Class:\t%s\n", qosClass(&p.Spec))
	d.labels(level0, "Node-Selectors", p.Spec.NodeSelector)
	d.tolerations(level0, "Tolerations", p.Spec.Tolerations)
	return nil
}

// podFields resolves the fieldRef paths berth knows for a pod, as
// kubectl shows their values; nil for a template.
func podFields(p state.Pod, s map[string]any) map[string]string {
	host, _ := s["hostIP"].(string)
	out := map[string]string{"metadata.name": p.Name, "metadata.namespace": p.Namespace, "spec.nodeName": p.NodeName,
		"spec.serviceAccountName": cmp.Or(p.Spec.ServiceAccountName, "default"), "status.podIP": p.Status.IP, "status.hostIP": host}
	for k, v := range p.Labels {
		out["metadata.labels['"+k+"']"] = v
	}
	for k, v := range p.Annotations {
		out["metadata.annotations['"+k+"']"] = v
	}
	return out
}

// podTemplate is kubectl's DescribePodTemplate.
func (d *describer) podTemplate(t objects.PodTemplateSpec) {
	d.w.write(level0, "Pod Template:\n")
	var meta objects.TemplateMeta
	if t.Metadata != nil {
		meta = *t.Metadata
	}
	d.labels(level1, "Labels", meta.Labels)
	if len(meta.Annotations) > 0 {
		d.annotations(level1, "Annotations", meta.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		d.w.write(level1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		d.containers("Init Containers", t.Spec.InitContainers, nil, nil, "  ")
	}
	d.containers("Containers", t.Spec.Containers, nil, nil, "  ")
	d.volumes(t.Spec.Volumes, "  ")
	d.labels(level1, "Node-Selectors", t.Spec.NodeSelector)
	d.tolerations(level1, "Tolerations", t.Spec.Tolerations)
}

// containers is kubectl's describeContainers: space is "" for a pod's,
// "  " for a template's (whose names kubectl indents one more space).
// statuses and fields are a pod's (nil for a template).
func (d *describer) containers(label string, cs []objects.Container, statuses []state.ContainerStatus, fields map[string]string, space string) {
	w := d.w
	w.write(level0, "%s%s:\n", space, label)
	nameIndent := ""
	if space != "" {
		nameIndent = " "
	}
	for _, c := range cs {
		i := slices.IndexFunc(statuses, func(s state.ContainerStatus) bool { return s.Name == c.Name })
		w.write(level1, "%s%s:\n", nameIndent, c.Name)
		if i >= 0 && statuses[i].ID != "" {
			w.write(level2, "Container ID:\tcontainerd://%s\n", statuses[i].ID)
		}
		w.write(level2, "Image:\t%s\n", c.Image)
		var ports, hostPorts []string
		for _, p := range c.Ports {
			ports, hostPorts = append(ports, fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)), append(hostPorts, fmt.Sprintf("%d/%s", p.HostPort, p.Protocol))
		}
		w.write(level2, "%s:\t%s\n", plural("Port", len(ports)), orNone(strings.Join(ports, ", ")))
		w.write(level2, "%s:\t%s\n", plural("Host Port", len(hostPorts)), orNone(strings.Join(hostPorts, ", ")))
		d.commandLines("Command", c.Command)
		d.commandLines("Args", c.Args)
		if i >= 0 {
			st := statuses[i]
			d.containerState(st)
			w.write(level2, "Ready:\t%s\n", boolWord(st.Ready))
			w.write(level2, "Restart Count:\t%d\n", st.Restarts)
		} else if statuses != nil {
			w.write(level2, "State:\tWaiting\n") // no report of it yet
			w.write(level2, "Ready:\tFalse\n")
			w.write(level2, "Restart Count:\t0\n")
		}
		d.resources("Limits", c.Resources.Limits)
		d.resources("Requests", c.Resources.Requests)
		for _, pr := range []struct {
			title string
			p     *objects.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if pr.p != nil {
				w.write(level2, "%s:\t%s\n", pr.title, describeProbe(pr.p))
			}
		}
		if len(c.EnvFrom) > 0 {
			d.envFrom(c.EnvFrom)
		}
		d.env(&c, fields)
		d.mounts(c.VolumeMounts)
	}
}

func plural(s string, n int) string {
	if n > 1 {
		return s + "s"
	}
	return s
}

func (d *describer) commandLines(title string, args []string) {
	if len(args) == 0 {
		return
	}
	d.w.write(level2, "%s:\n", title)
	for _, a := range args {
		for _, l := range strings.Split(a, "\n") {
			d.w.write(level3, "%s\n", l)
		}
	}
}

// containerState is kubectl's State lines, from what the agent reports
// (it keeps no start times nor last state).
func (d *describer) containerState(st state.ContainerStatus) {
	switch st.State {
	case "running":
		d.w.write(level2, "State:\tRunning\n")
	case "exited":
		d.w.write(level2, "State:\tTerminated\n")
		if st.Reason != "" {
			d.w.write(level3, "Reason:\t%s\n", st.Reason)
		}
		d.w.write(level3, "Exit Code:\t%d\n", st.ExitCode)
	default:
		d.w.write(level2, "State:\tWaiting\n")
		if st.Reason != "" {
			d.w.write(level3, "Reason:\t%s\n", st.Reason)
		}
	}
}

// resources writes a container's limits or requests, names sorted as
// kubectl sorts them, quantities as written.
func (d *describer) resources(title string, l objects.ResourceList) {
	m := map[string]objects.Quantity{"cpu": l.CPU, "memory": l.Memory, "ephemeral-storage": l.EphemeralStorage}
	maps.Copy(m, l.Extended)
	maps.DeleteFunc(m, func(_ string, q objects.Quantity) bool { return q == "" })
	if len(m) == 0 {
		return
	}
	d.w.write(level2, "%s:\n", title)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d.w.write(level3, "%s:\t%s\n", k, m[k])
	}
}

// describeProbe is kubectl's one line: the action, then
// delay=0s timeout=1s period=10s #success=1 #failure=3.
func describeProbe(p *objects.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := url.URL{Scheme: strings.ToLower(p.HTTPGet.Scheme), Path: p.HTTPGet.Path}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort("", port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket :%s %s", p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, p.GRPC.Service, attrs)
	}
	return "unknown " + attrs
}

func (d *describer) envFrom(from []objects.EnvFromSource) {
	d.w.write(level2, "Environment Variables from:\n")
	for _, e := range from {
		kind, ref := "ConfigMap", e.ConfigMapRef
		if e.SecretRef != nil {
			kind, ref = "Secret", e.SecretRef
		}
		if ref == nil {
			continue
		}
		if e.Prefix != "" {
			d.w.write(level3, "%s\t%s with prefix '%s'\tOptional: %t\n", ref.Name, kind, e.Prefix, ref.Optional)
		} else {
			d.w.write(level3, "%s\t%s\tOptional: %t\n", ref.Name, kind, ref.Optional)
		}
	}
}

// env is kubectl's Environment: values as written, references as
// references (a Secret's value is never read), a pod's fieldRefs resolved.
func (d *describer) env(c *objects.Container, fields map[string]string) {
	if len(c.Env) == 0 {
		d.w.write(level2, "Environment:\t<none>\n")
		return
	}
	d.w.write(level2, "Environment:\n")
	for _, e := range c.Env {
		v := e.ValueFrom
		switch {
		case v == nil:
			for i, l := range strings.Split(e.Value, "\n") {
				if i == 0 {
					d.w.write(level3, "%s:\t%s\n", e.Name, l)
				} else {
					d.w.write(level3, "\t%s\n", l)
				}
			}
		case v.FieldRef != nil:
			d.w.write(level3, "%s:\t%s (%s:%s)\n", e.Name, fields[v.FieldRef.FieldPath], cmp.Or(v.FieldRef.APIVersion, "v1"), v.FieldRef.FieldPath)
		case v.ResourceFieldRef != nil:
			d.w.write(level3, "%s:\t%s (%s)\n", e.Name, resourceField(c, v.ResourceFieldRef.Resource), v.ResourceFieldRef.Resource)
		case v.SecretKeyRef != nil:
			d.w.write(level3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, v.SecretKeyRef.Key, v.SecretKeyRef.Name, v.SecretKeyRef.Optional)
		case v.ConfigMapKeyRef != nil:
			d.w.write(level3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, v.ConfigMapKeyRef.Key, v.ConfigMapKeyRef.Name, v.ConfigMapKeyRef.Optional)
		}
	}
}

// resourceField is a resourceFieldRef's quantity as the container
// declares it; an unset limit is the node's allocatable, as kubectl says.
func resourceField(c *objects.Container, resource string) string {
	r := c.Resources
	q := map[string]objects.Quantity{"limits.cpu": r.Limits.CPU, "limits.memory": r.Limits.Memory, "limits.ephemeral-storage": r.Limits.EphemeralStorage,
		"requests.cpu": r.Requests.CPU, "requests.memory": r.Requests.Memory, "requests.ephemeral-storage": r.Requests.EphemeralStorage}[resource]
	if q == "" && strings.HasPrefix(resource, "limits.") {
		return "node allocatable"
	}
	return cmp.Or(string(q), "0")
}

func (d *describer) mounts(ms []objects.VolumeMount) {
	if len(ms) == 0 {
		d.w.write(level2, "Mounts:\t<none>\n")
		return
	}
	d.w.write(level2, "Mounts:\n")
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b objects.VolumeMount) int { return strings.Compare(a.MountPath, b.MountPath) })
	for _, m := range ms {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		d.w.write(level3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

// volumes is kubectl's describeVolumes, for the sources berth has.
func (d *describer) volumes(vs []objects.Volume, space string) {
	if len(vs) == 0 {
		d.w.write(level0, "%sVolumes:\t<none>\n", space)
		return
	}
	d.w.write(level0, "%sVolumes:\n", space)
	nameIndent := ""
	if space != "" {
		nameIndent = " "
	}
	for _, v := range vs {
		d.w.write(level1, "%s%s:\n", nameIndent, v.Name)
		lines := [][2]string{}
		switch {
		case v.PersistentVolumeClaim != nil:
			lines = [][2]string{{"Type", "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)"},
				{"ClaimName", v.PersistentVolumeClaim.ClaimName}, {"ReadOnly", fmt.Sprint(v.PersistentVolumeClaim.ReadOnly)}}
		case v.ConfigMap != nil:
			lines = [][2]string{{"Type", "ConfigMap (a volume populated by a ConfigMap)"}, {"Name", v.ConfigMap.Name}, {"Optional", fmt.Sprint(v.ConfigMap.Optional)}}
		case v.Secret != nil:
			lines = [][2]string{{"Type", "Secret (a volume populated by a Secret)"}, {"SecretName", v.Secret.SecretName}, {"Optional", fmt.Sprint(v.Secret.Optional)}}
		case v.EmptyDir != nil:
			lines = [][2]string{{"Type", "EmptyDir (a temporary directory that shares a pod's lifetime)"}, {"Medium", v.EmptyDir.Medium},
				{"SizeLimit", cmp.Or(string(v.EmptyDir.SizeLimit), "<unset>")}}
		case v.HostPath != nil:
			lines = [][2]string{{"Type", "HostPath (bare host directory volume)"}, {"Path", v.HostPath.Path}, {"HostPathType", v.HostPath.Type}}
		}
		for _, l := range lines {
			d.w.write(level2, "%s:\t%s\n", l[0], l[1])
		}
	}
}

// tolerations are kubectl's key=value:effect op=Exists for 300s lines.
func (d *describer) tolerations(level int, title string, ts []objects.Toleration) {
	var lines []string
	for _, t := range ts {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + t.Effect
		}
		if t.Operator == "Exists" && t.Value == "" {
			s = strings.TrimSpace(s + " op=Exists")
		}
		lines = append(lines, s)
	}
	d.list(level, title, lines)
}

// qosClass is Kubernetes' QoS class of a pod: BestEffort without any
// request or limit, Guaranteed when every container limits CPU and memory
// and requests what it limits, Burstable otherwise.
func qosClass(spec *objects.PodSpec) string {
	asks, guaranteed := false, true
	for _, c := range spec.AllContainers() {
		r, l := c.Resources.Requests, c.Resources.Limits
		for _, q := range []objects.Quantity{r.CPU, r.Memory, l.CPU, l.Memory} {
			asks = asks || q != ""
		}
		same := func(req, lim objects.Quantity) bool {
			if lim == "" {
				return false
			}
			if req == "" {
				return true // defaulted to the limit
			}
			a, errA := req.Milli()
			b, errB := lim.Milli()
			return errA == nil && errB == nil && a == b
		}
		guaranteed = guaranteed && same(r.CPU, l.CPU) && same(r.Memory, l.Memory)
	}
	switch {
	case !asks:
		return "BestEffort"
	case guaranteed:
		return "Guaranteed"
	}
	return "Burstable"
}
