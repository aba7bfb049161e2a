package state

// Claim is a PersistentVolumeClaim of the local-path class: a directory
// under the data dir of the node it is bound to. Its records come from the
// repository (a PersistentVolumeClaim, or a StatefulSet's claim template);
// the scheduler binds it with its first pod; once it has left the
// repository and no pod uses it, it is released, its node's agent deletes
// the directory and then asks the masters to forget it.
type Claim struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// StatefulSet names the StatefulSet whose template made the claim, ""
	// for a PersistentVolumeClaim of the repository.
	StatefulSet string `json:"statefulSet,omitempty"`
	// Bytes is the storage requested; AccessModes as written.
	Bytes       int64    `json:"bytes"`
	AccessModes []string `json:"accessModes"`
	// NodeName is where the data live, "" until bound. A binding is for
	// the claim's life.
	NodeName string `json:"nodeName,omitempty"`
	// Released: out of the repository and unused; the data are to be
	// deleted. A released claim is never taken back.
	Released bool `json:"released,omitempty"`
}

// Key returns the claim's key in State.Claims (namespace/name).
func (c *Claim) Key() string { return PodKey(c.Namespace, c.Name) }

// OncePod says whether one pod at most may use the claim at a time.
func (c *Claim) OncePod() bool {
	for _, m := range c.AccessModes {
		if m == "ReadWriteOncePod" {
			return true
		}
	}
	return false
}

// ClaimRef names a claim by its key.
type ClaimRef struct {
	Key string `json:"key"`
}

// NodeStorage is the free space a node reports on the filesystem of its
// data dir, where claims live.
type NodeStorage struct {
	Name      string `json:"name"`
	FreeBytes int64  `json:"freeBytes"`
}
