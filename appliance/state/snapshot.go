package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// A snapshot is a header line, then the State exactly as json.Marshal
// writes it, produced and read one revision, node or pod at a time so
// neither side holds the whole encoding in memory.
const (
	snapshotFormat  = "berth-state"
	snapshotVersion = 1
)

type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// jsonWriter keeps the first error so WriteSnapshot reads straight through.
type jsonWriter struct {
	w   io.Writer
	err error
}

func (w *jsonWriter) raw(s string) {
	if w.err == nil {
		_, w.err = io.WriteString(w.w, s)
	}
}

func (w *jsonWriter) value(v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	_, w.err = w.w.Write(b)
}

// WriteSnapshot writes s in the snapshot format: a header line, then the
// State as json.Marshal writes it.
func WriteSnapshot(out io.Writer, s *State) error {
	w := &jsonWriter{w: out}
	w.value(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion})
	w.raw("\n{\"index\":")
	w.value(s.Index)
	w.raw(",\"revisions\":")
	if s.Revisions == nil {
		w.raw("null")
	} else {
		w.raw("[")
		for i, r := range s.Revisions {
			if i > 0 {
				w.raw(",")
			}
			w.value(r)
		}
		w.raw("]")
	}
	w.raw(",\"nodes\":")
	writeMap(w, s.Nodes)
	w.raw(",\"pods\":{")
	first := true
	for p := range s.Pods.All() {
		if !first {
			w.raw(",")
		}
		first = false
		w.value(p.Key())
		w.raw(":")
		w.value(p)
	}
	w.raw("}")
	w.raw(",\"serviceIPs\":")
	w.value(s.ServiceIPs)
	if len(s.NodePorts) > 0 {
		// Absent when empty, so that masters from before node ports were
		// allocated read the snapshots of clusters that have none.
		w.raw(",\"nodePorts\":")
		writeMap(w, s.NodePorts)
	}
	w.raw(",\"tokens\":")
	w.value(s.Tokens)
	if s.CA != nil {
		w.raw(",\"ca\":")
		w.value(s.CA)
	}
	w.raw(",\"masterAPIs\":")
	w.value(s.MasterAPIs)
	if s.PodNetwork != nil {
		w.raw(",\"podNetwork\":")
		w.value(s.PodNetwork)
	}
	// Written only when there are any, as json.Marshal's omitempty.
	if len(s.Jobs) > 0 {
		w.raw(",\"jobs\":")
		writeMap(w, s.Jobs)
	}
	if len(s.CronSchedules) > 0 {
		w.raw(",\"cronSchedules\":")
		writeMap(w, s.CronSchedules)
	}
	if len(s.Claims) > 0 {
		w.raw(",\"claims\":")
		writeMap(w, s.Claims)
	}
	if len(s.Terminating) > 0 {
		w.raw(",\"terminating\":")
		writeMap(w, s.Terminating)
	}
	if s.Convergence != nil {
		w.raw(",\"convergence\":")
		w.value(s.Convergence)
	}
	if len(s.Events) > 0 {
		w.raw(",\"events\":")
		w.value(s.Events)
	}
	w.raw("}\n")
	return w.err
}

// writeMap writes m as json.Marshal would, keys sorted.
func writeMap[V any](w *jsonWriter, m map[string]V) {
	if m == nil {
		w.raw("null")
		return
	}
	w.raw("{")
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			w.raw(",")
		}
		w.value(k)
		w.raw(":")
		w.value(m[k])
	}
	w.raw("}")
}

// ReadSnapshot reads what WriteSnapshot wrote, refusing other formats and
// versions.
func ReadSnapshot(r io.Reader) (*State, error) {
	dec := json.NewDecoder(r)
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("not a berth state snapshot (format %q)", h.Format)
	}
	if h.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot format version %d is unknown (this master reads %d)", h.Version, snapshotVersion)
	}
	s := &State{}
	if err := readDelim(dec, '{'); err != nil {
		return nil, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		switch key := tok.(string); key {
		case "index":
			err = dec.Decode(&s.Index)
		case "revisions":
			s.Revisions, err = readArray[Revision](dec)
		case "nodes":
			s.Nodes, err = readObject[*Node](dec)
		case "pods":
			var pods map[string]*Pod
			if pods, err = readObject[*Pod](dec); err == nil {
				s.Pods, err = podTableOf(pods)
			}
		case "serviceIPs":
			err = dec.Decode(&s.ServiceIPs)
		case "nodePorts":
			err = dec.Decode(&s.NodePorts)
		case "tokens":
			err = dec.Decode(&s.Tokens)
		case "ca":
			err = dec.Decode(&s.CA)
		case "masterAPIs":
			err = dec.Decode(&s.MasterAPIs)
		case "podNetwork":
			err = dec.Decode(&s.PodNetwork)
		case "jobs":
			s.Jobs, err = readObject[*Job](dec)
		case "cronSchedules":
			err = dec.Decode(&s.CronSchedules)
		case "claims":
			s.Claims, err = readObject[*Claim](dec)
		case "terminating":
			err = dec.Decode(&s.Terminating)
		case "convergence":
			err = dec.Decode(&s.Convergence)
		case "events":
			s.Events, err = readArray[Event](dec)
		default:
			err = fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot state: %w", err)
		}
	}
	if err := readDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("snapshot: data after the state")
	}
	// Apply dereferences every node, pod and job.
	for k, n := range s.Nodes {
		if n == nil {
			return nil, fmt.Errorf("snapshot state: node %q is null", k)
		}
	}
	for k, j := range s.Jobs {
		if j == nil {
			return nil, fmt.Errorf("snapshot state: job %q is null", k)
		}
	}
	for k, c := range s.Claims {
		if c == nil {
			return nil, fmt.Errorf("snapshot state: claim %q is null", k)
		}
	}
	s.init()
	return s, nil
}

func readDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if tok != want {
		return fmt.Errorf("snapshot: found %v where %v belongs", tok, want)
	}
	return nil
}

// readArray reads a JSON array (or null) one element at a time.
func readArray[T any](dec *json.Decoder) ([]T, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("found %v where an array belongs", tok)
	}
	var out []T
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	_, err = dec.Token() // the closing ], which Token checks
	return out, err
}

// readObject reads a JSON object (or null) one member at a time.
func readObject[V any](dec *json.Decoder) (map[string]V, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("found %v where an object belongs", tok)
	}
	out := map[string]V{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v V
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[key.(string)] = v
	}
	_, err = dec.Token() // the closing }
	return out, err
}
