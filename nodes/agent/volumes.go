package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Mount is one bind mount of a pod's volume into a container.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// podDir is where a pod's volumes live on the node.
func podDir(root string, p *state.Pod) string {
	return filepath.Join(root, "pods", p.Namespace+"_"+p.Name)
}

// claimDir is where a claim's data live on the node it is bound to.
func claimDir(root, namespace, name string) string {
	return filepath.Join(root, "claims", namespace, name)
}

// prepareVolumes writes the pod's ConfigMap and Secret volumes as files and
// creates its emptyDirs, then returns each container's mounts. ConfigMap
// and Secret files are rewritten whole on every call, so a new revision's
// data reaches running pods, as the kubelet's projection does.
//
// With the pod's fsGroup, as the kubelet's volume ownership: directories
// belong to that group and are setgid (what containers create there is
// the group's too), projected files are group-readable.
func prepareVolumes(root string, a *api.NodeAssignment, p *state.Pod) (map[string][]Mount, error) {
	dir := podDir(root, p)
	fsGroup := -1
	if sc := p.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = int(*sc.FSGroup)
	}
	hostPaths := map[string]string{}
	// Projected (ConfigMap, Secret) volumes are mounted read-only whatever
	// the spec says, as Kubernetes does: the agent rewrites their files as
	// root, and a container must not plant links among them. A claim is
	// when its volume says readOnly.
	readOnly := map[string]bool{}
	for _, v := range p.Spec.Volumes {
		path := filepath.Join(dir, "volumes", v.Name)
		hostPaths[v.Name] = path
		readOnly[v.Name] = v.ConfigMap != nil || v.Secret != nil
		var files map[string][]byte
		var items []objects.KeyToPath
		mode := os.FileMode(0o644)
		if c := v.PersistentVolumeClaim; c != nil {
			path = claimDir(root, p.Namespace, c.ClaimName)
			hostPaths[v.Name] = path
			if !slices.ContainsFunc(a.Claims, func(b state.Claim) bool { return b.Namespace == p.Namespace && b.Name == c.ClaimName && !b.Released }) {
				return nil, &configError{fmt.Sprintf("volume %s: claim %s/%s is not bound to this node", v.Name, p.Namespace, c.ClaimName)}
			}
			readOnly[v.Name] = c.ReadOnly
		}
		switch {
		case v.HostPath != nil:
			if err := prepareHostPath(root, v.HostPath); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			hostPaths[v.Name] = filepath.Clean(v.HostPath.Path)
			continue
		case v.EmptyDir != nil || v.PersistentVolumeClaim != nil:
			// World-writable, as the kubelet (and local-path) makes it: a
			// container's user need not be root (MkdirAll's mode passes the
			// umask).
			if err := os.MkdirAll(path, 0o777); err != nil {
				return nil, err
			}
			if err := os.Chmod(path, 0o777); err != nil {
				return nil, err
			}
			if fsGroup >= 0 {
				if err := groupOwn(path, fsGroup, 0o777); err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			}
			continue
		case v.ConfigMap != nil:
			cm := a.ConfigMaps[p.Namespace+"/"+v.ConfigMap.Name]
			if cm == nil && !v.ConfigMap.Optional {
				return nil, &configError{fmt.Sprintf("volume %s: ConfigMap %s/%s not found", v.Name, p.Namespace, v.ConfigMap.Name)}
			}
			if cm != nil {
				files = configMapData(cm)
			}
			items = v.ConfigMap.Items
			if v.ConfigMap.DefaultMode != nil {
				mode = os.FileMode(*v.ConfigMap.DefaultMode)
			}
		case v.Secret != nil:
			s := a.Secrets[p.Namespace+"/"+v.Secret.SecretName]
			if s == nil && !v.Secret.Optional {
				return nil, &configError{fmt.Sprintf("volume %s: Secret %s/%s not found", v.Name, p.Namespace, v.Secret.SecretName)}
			}
			if s != nil {
				files = objects.SecretData(s)
			}
			items = v.Secret.Items
			mode = 0o600
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
		}
		if fsGroup >= 0 {
			mode |= 0o440
		}
		if err := project(path, files, items, mode, fsGroup); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	mounts := map[string][]Mount{}
	for _, c := range p.Spec.AllContainers() {
		for _, m := range c.VolumeMounts {
			host := hostPaths[m.Name]
			if m.SubPath != "" {
				host = filepath.Join(host, filepath.Clean("/"+m.SubPath))
			}
			mounts[c.Name] = append(mounts[c.Name], Mount{HostPath: host, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly || readOnly[m.Name]})
		}
	}
	return mounts, nil
}

// project writes the selected keys (all keys without items) into the
// volume directory. The directory itself stays (containers bind-mount it);
// each file is replaced by a rename, and keys that are gone are removed.
func project(path string, files map[string][]byte, items []objects.KeyToPath, mode os.FileMode, group int) error {
	if len(items) == 0 {
		for k := range files {
			items = append(items, objects.KeyToPath{Key: k, Path: k})
		}
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	// Written through a root at the volume: a link in it (left by a
	// container when the volume was mounted writable) leads nowhere else.
	root, err := os.OpenRoot(path)
	if err != nil {
		return err
	}
	defer root.Close()
	keep := map[string]bool{}
	for _, it := range items {
		data, ok := files[it.Key]
		if !ok {
			return &configError{fmt.Sprintf("no key %q", it.Key)}
		}
		// The loader refused absolute and .. paths; Clean under / keeps it so.
		rel := strings.TrimPrefix(filepath.Clean("/"+it.Path), "/")
		if rel == "" {
			return fmt.Errorf("item path %q names the volume itself", it.Path)
		}
		if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
			return err
		}
		if err := root.WriteFile(rel+".tmp", data, mode); err != nil {
			root.Remove(rel + ".tmp") // what a full disk let through
			return err
		}
		if group >= 0 {
			// Before the rename: the file appears with its group.
			if err := root.Chown(rel+".tmp", -1, group); err != nil {
				return err
			}
		}
		if err := root.Rename(rel+".tmp", rel); err != nil {
			return err
		}
		keep[filepath.Join(path, rel)] = true
	}
	return filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case !d.IsDir() && !keep[p]:
			return os.Remove(p)
		case d.IsDir() && group >= 0:
			return groupOwn(p, group, 0o755)
		}
		return nil
	})
}

// groupOwn gives directory dir to group with mode (setgid, as fsGroup asks).
func groupOwn(dir string, group int, mode os.FileMode) error {
	if err := os.Lchown(dir, -1, group); err != nil {
		return err
	}
	return os.Chmod(dir, mode|os.ModeSetgid)
}
