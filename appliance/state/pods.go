package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	memdb "github.com/hashicorp/go-memdb"
)

// PodTable is a state's pods: a go-memdb table on an immutable radix tree,
// as Nomad and Consul keep their state. A batch writes a new version in
// O(log n) per pod, sharing everything else with the version before, so a
// status update costs the same at 150,000 pods as at 100 (a map had to be
// copied whole). Published tables are never written; every reader shares
// them without a lock. Indexes: by key, by node (pods bound to a node, ""
// for the unbound) and by owner (namespace, owner kind and name).
type PodTable struct {
	db *memdb.MemDB // a snapshot no write reaches
	n  int
}

const podsTable = "pods"

// podSchema indexes pods; each indexer appends a NUL, as memdb's own
// string indexes do, so that a key is never a prefix of another.
var podSchema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
	podsTable: {Name: podsTable, Indexes: map[string]*memdb.IndexSchema{
		"id":    {Name: "id", Unique: true, Indexer: podIndex(func(p *Pod) string { return p.Key() })},
		"node":  {Name: "node", Indexer: podIndex(func(p *Pod) string { return p.NodeName })},
		"owner": {Name: "owner", Indexer: podIndex(func(p *Pod) string { return ownerKey(p.Namespace, p.OwnerKind, p.Deployment) })},
	}},
}}

// podIndex indexes pods by a string of theirs.
type podIndex func(*Pod) string

func (f podIndex) FromObject(obj any) (bool, []byte, error) {
	p, ok := obj.(*Pod)
	if !ok {
		return false, nil, fmt.Errorf("not a pod: %T", obj)
	}
	return true, []byte(f(p) + "\x00"), nil
}

func (f podIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, errors.New("want one argument")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("want a string, not %T", args[0])
	}
	return []byte(s + "\x00"), nil
}

// PrefixFromArgs makes "<index>_prefix" look-ups work (go-memdb's
// PrefixIndexer): the argument without the terminator.
func (f podIndex) PrefixFromArgs(args ...any) ([]byte, error) {
	b, err := f.FromArgs(args...)
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

func newPodDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(podSchema)
	if err != nil {
		panic(fmt.Sprintf("store: pod schema: %v", err)) // the schema is a constant
	}
	return db
}

// emptyPods is shared by every state without pods.
var emptyPods = PodTable{db: newPodDB()}

// NewPodTable returns a table of pods, for tests and tools that build a
// state by hand; Apply is how the masters change one.
func NewPodTable(pods ...*Pod) PodTable {
	w := podWriter{base: PodTable{}}
	for _, p := range pods {
		w.put(p)
	}
	return w.done()
}

func (t PodTable) read() *memdb.Txn {
	if t.db == nil {
		return emptyPods.db.Txn(false)
	}
	return t.db.Txn(false)
}

// Get returns the pod with key (see PodKey), nil if there is none.
func (t PodTable) Get(key string) *Pod {
	raw, err := t.read().First(podsTable, "id", key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*Pod)
}

// Len is the number of pods.
func (t PodTable) Len() int { return t.n }

// All yields every pod in key order.
func (t PodTable) All() iter.Seq[*Pod] { return t.by("id") }

// OnNode yields the pods bound to node, in key order; node "" yields the
// unbound ones.
func (t PodTable) OnNode(node string) iter.Seq[*Pod] { return t.by("node", node) }

// OfDeployment yields the pods Deployment namespace/name owns.
func (t PodTable) OfDeployment(namespace, name string) iter.Seq[*Pod] {
	return t.OfOwner("", namespace, name)
}

// OfOwner yields the pods the kind's ("" for Deployment) namespace/name
// owns.
func (t PodTable) OfOwner(kind, namespace, name string) iter.Seq[*Pod] {
	return t.by("owner", ownerKey(namespace, kind, name))
}

// InNamespace yields the pods of namespace, in key order.
func (t PodTable) InNamespace(namespace string) iter.Seq[*Pod] {
	return t.by("id_prefix", namespace+"/")
}

func ownerKey(namespace, kind, name string) string { return namespace + "/" + kind + "/" + name }

func (t PodTable) by(index string, args ...any) iter.Seq[*Pod] {
	return podsIn(t.read(), index, args...)
}

// podsIn yields the pods txn finds in index.
func podsIn(txn *memdb.Txn, index string, args ...any) iter.Seq[*Pod] {
	return func(yield func(*Pod) bool) {
		it, err := txn.Get(podsTable, index, args...)
		if err != nil {
			return
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if !yield(raw.(*Pod)) {
				return
			}
		}
	}
}

// MarshalJSON writes the pods as an object by key, as the map they were.
func (t PodTable) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for p := range t.All() {
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(p.Key())
		v, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object of pods by key; each key must be its pod's.
func (t *PodTable) UnmarshalJSON(data []byte) error {
	var m map[string]*Pod
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	var err error
	*t, err = podTableOf(m)
	return err
}

// podTableOf makes a table of pods read by key.
func podTableOf(m map[string]*Pod) (PodTable, error) {
	w := podWriter{base: PodTable{}}
	for k, p := range m {
		if err := checkPodKey(k, p); err != nil {
			w.abort()
			return PodTable{}, err
		}
		w.put(p)
	}
	return w.done(), nil
}

func checkPodKey(key string, p *Pod) error {
	if p == nil {
		return fmt.Errorf("pod %q is null", key)
	}
	if p.Key() != key {
		return fmt.Errorf("pod %q is filed under %q", p.Key(), key)
	}
	return nil
}

// podWriter writes a new version of a table; the table it started from
// stays as it was.
type podWriter struct {
	base PodTable
	db   *memdb.MemDB
	txn  *memdb.Txn
	n    int
}

func (w *podWriter) begin() {
	if w.txn != nil {
		return
	}
	if w.base.db == nil {
		w.db = newPodDB()
	} else {
		w.db = w.base.db.Snapshot()
	}
	w.txn, w.n = w.db.Txn(true), w.base.n
}

// put inserts or replaces p. p must not change afterwards: readers share it.
func (w *podWriter) put(p *Pod) {
	w.begin()
	if old, _ := w.txn.First(podsTable, "id", p.Key()); old == nil {
		w.n++
	}
	if err := w.txn.Insert(podsTable, p); err != nil {
		panic(fmt.Sprintf("state: inserting pod %s: %v", p.Key(), err)) // the indexers take every pod
	}
}

func (w *podWriter) delete(key string) {
	w.begin()
	old, _ := w.txn.First(podsTable, "id", key)
	if old == nil {
		return
	}
	if err := w.txn.Delete(podsTable, old); err != nil {
		panic(fmt.Sprintf("state: deleting pod %s: %v", key, err))
	}
	w.n--
}

// get reads the version being written.
func (w *podWriter) get(key string) (*Pod, bool) {
	if w.txn == nil {
		p := w.base.Get(key)
		return p, p != nil
	}
	raw, err := w.txn.First(podsTable, "id", key)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Pod), true
}

// inNamespace yields the pods of namespace in the version being written.
func (w *podWriter) inNamespace(namespace string) iter.Seq[*Pod] {
	if w.txn == nil {
		return w.base.InNamespace(namespace)
	}
	return podsIn(w.txn, "id_prefix", namespace+"/")
}

// done returns the new version, or the base if nothing was written.
func (w *podWriter) done() PodTable {
	if w.txn == nil {
		if w.base.db == nil {
			return emptyPods
		}
		return w.base
	}
	w.txn.Commit()
	// A snapshot, so that no later write to db reaches the published table.
	t := PodTable{db: w.db.Snapshot(), n: w.n}
	w.txn = nil
	return t
}

// abort drops what was written.
func (w *podWriter) abort() {
	if w.txn != nil {
		w.txn.Abort()
		w.txn = nil
	}
}
