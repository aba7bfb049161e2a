package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/gitops"
	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/objects"
	"github.com/berth/berth/schemas/report"
)

var diffOutputs = []string{"text", "diff", "markdown"}

func newDiffCmd() *cobra.Command {
	var local, repoDir, path, output string
	var maxFileBytes int64
	cmd := &cobra.Command{
		Use:   "diff [REF | --local DIR]",
		Short: "Show what a commit or a directory would change against the applied revision",
		Long: `diff loads a config repository as the masters would (the same loader and
schemas as berth validate) and compares its objects with those of the
revision the cluster runs, object by object and field by field.

With REF (a branch, tag or commit), the committed tree of REF in the
repository around the current directory (or --repo DIR) is read, below the
path the masters load (--path, default: the one the master reports). With
--local DIR, or neither, the files of DIR (default ".") as they are on disk.

Secrets are compared by the masters: their values are sent to them, never
shown, and the output says which keys changed.

Exit status: 0 when nothing would change, 1 when something would, 2 when
the input is invalid (problems printed as berth validate prints them) or
the diff could not be made.`,
		Example: `  berth diff                    # the working tree
  berth diff --local ./clusters/prod
  berth diff origin/feature -o markdown > comment.md`,
		Args: cobra.MaximumNArgs(1),
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVar(&local, "local", "", "compare the files of this directory (default: \".\" when no REF is given)")
	cmd.Flags().StringVar(&repoDir, "repo", ".", "the Git repository REF is read from (a directory inside its work tree)")
	cmd.Flags().StringVar(&path, "path", "", "directory of the repository the masters load (default: the master's --path)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: "+strings.Join(diffOutputs, ", "))
	cmd.Flags().Int64Var(&maxFileBytes, "max-file-bytes", schemas.DefaultMaxFileBytes, "refuse files larger than this")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !slices.Contains(diffOutputs, output) {
			return &exitError{2, fmt.Errorf("unknown --output %q (want one of %s)", output, strings.Join(diffOutputs, ", "))}
		}
		if len(args) == 1 && local != "" {
			return &exitError{2, fmt.Errorf("give a REF or --local DIR, not both")}
		}
		if len(args) == 0 && (cmd.Flags().Changed("path") || cmd.Flags().Changed("repo")) {
			return &exitError{2, fmt.Errorf("--path and --repo are for a REF; with --local, name the directory itself")}
		}
		c, err := client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		applied, err := c.AppliedObjects(ctx)
		if err != nil {
			return &exitError{2, fmt.Errorf("reading the applied revision: %w", err)}
		}
		var res *schemas.Result
		var source string
		if len(args) == 0 {
			if local == "" {
				local = "."
			}
			if _, err := os.Stat(local); err != nil {
				return &exitError{2, fmt.Errorf("cannot read %s: %v", local, err)}
			}
			res, source = schemas.Load([]string{local}, schemas.WithMaxFileBytes(maxFileBytes)), local
		} else {
			if !cmd.Flags().Changed("path") {
				st, err := c.Status(ctx)
				if err != nil {
					return &exitError{2, fmt.Errorf("asking the master which path it loads (or give --path): %w", err)}
				}
				path = st.Sync.Path
			}
			if res, source, err = loadRef(repoDir, args[0], path, maxFileBytes); err != nil {
				return &exitError{2, err}
			}
		}
		out := cmd.OutOrStdout()
		if res.Errors() > 0 {
			if output == "markdown" {
				fmt.Fprintf(out, "### berth diff: %s is invalid\n\n```text\n", source)
				defer fmt.Fprintln(out, "```")
			}
			if err := report.Write(out, "text", res, version); err != nil {
				return &exitError{2, err}
			}
			return &exitError{2, nil}
		}
		if len(res.Diagnostics) > 0 { // warnings: kept off the diff
			report.Write(cmd.ErrOrStderr(), "text", res, version)
		}
		diffs, err := diffObjects(ctx, c, applied, res.Objects)
		if err != nil {
			return &exitError{2, err}
		}
		from := "no applied revision"
		if applied.Commit != "" {
			from = "applied revision " + short(applied.Commit)
		}
		if err := writeDiff(out, output, diffs, from, source); err != nil {
			return &exitError{2, err}
		}
		if len(diffs) > 0 {
			return &exitError{1, nil}
		}
		return nil
	}
	return cmd
}

// loadRef loads REF's tree as a master loads a fetched commit: extracted
// below its path into a scratch directory, positions relative to the
// repository's root.
func loadRef(repoDir, ref, path string, maxFileBytes int64) (*schemas.Result, string, error) {
	dir, err := os.MkdirTemp("", "berth-diff-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	commit, err := gitops.ExtractRef(repoDir, ref, path, dir)
	if err != nil {
		return nil, "", err
	}
	arg := "."
	if path != "" {
		arg = path
	}
	res := schemas.Load([]string{arg}, schemas.WithBase(dir), schemas.WithMaxFileBytes(maxFileBytes))
	return res, fmt.Sprintf("%s (%s)", ref, short(commit.SHA)), nil
}

// objectDiff is one object that would change.
type objectDiff struct {
	id objects.ObjectID
	op string // added, removed or changed
	// fields lists a changed object's changes, field by field.
	fields []fieldChange
	// unified is the diff of its YAML, as kubectl diff shows it.
	unified string
}

type fieldChange struct{ path, old, new string }

// Secrets are shown with these in place of their values.
const (
	hiddenValue  = "(hidden)"
	changedValue = "(hidden, changed)"
)

// secretsPerCall keeps each comparison's body well below the API's 1 MiB
// (a Secret holds at most 1 MiB in Kubernetes, and rarely more than a few
// KiB) and its count below the masters' bound.
const secretsPerCall = 50

// diffObjects compares the applied objects with those loaded. Secrets'
// values are compared by the masters, which hold them.
func diffObjects(ctx context.Context, c *api.Client, applied api.AppliedObjects, loaded []schemas.Loaded) ([]objectDiff, error) {
	old := map[objects.ObjectID]json.RawMessage{}
	for _, o := range applied.Objects {
		old[o.ID] = o.JSON
	}
	cur := map[objects.ObjectID]json.RawMessage{}
	var secrets []api.SecretValues
	for _, l := range loaded {
		id := l.ID()
		cur[id] = l.JSON
		if s, ok := l.Object.(*objects.Secret); ok && old[id] != nil {
			secrets = append(secrets, api.SecretValues{Namespace: id.Namespace, Name: id.Name, Data: objects.SecretData(s)})
		}
	}
	changedKeys := map[objects.ObjectID][]string{}
	for batch := range slices.Chunk(secrets, secretsPerCall) {
		changes, err := c.CompareSecrets(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("comparing Secrets: %w", err)
		}
		for _, ch := range changes {
			changedKeys[objects.ObjectID{Kind: "Secret", Namespace: ch.Namespace, Name: ch.Name}] = ch.Changed
		}
	}
	ids := slices.Collect(maps.Keys(old))
	for id := range cur {
		if old[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b objects.ObjectID) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var out []objectDiff
	for _, id := range ids {
		a, err := objectView(id, old[id], nil)
		if err != nil {
			return nil, fmt.Errorf("applied %s: %w", id, err)
		}
		b, err := objectView(id, cur[id], changedKeys[id])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if reflect.DeepEqual(a, b) {
			continue
		}
		d := objectDiff{id: id, op: "changed"}
		switch {
		case a == nil:
			d.op = "added"
		case b == nil:
			d.op = "removed"
		default:
			fieldChanges("", a, b, true, true, &d.fields)
		}
		if d.unified, err = unifiedYAML(id, a, b); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// objectView decodes an object's JSON for comparison (nil for none). A
// Secret's data and stringData become one data map of its keys, each
// value hidden (changed ones marked so), as Kubernetes merges them.
func objectView(id objects.ObjectID, j json.RawMessage, changed []string) (any, error) {
	if j == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if id.Kind != "Secret" || !ok {
		return v, nil
	}
	data := map[string]any{}
	for _, field := range []string{"data", "stringData"} {
		values, _ := m[field].(map[string]any)
		for k := range values {
			data[k] = hiddenValue
		}
		delete(m, field)
	}
	for _, k := range changed {
		if _, ok := data[k]; ok {
			data[k] = changedValue
		}
	}
	if len(data) > 0 {
		m["data"] = data
	}
	return m, nil
}

// fieldChanges lists where a and b differ, by field path (inA and inB say
// whether each side has the field at all).
func fieldChanges(path string, a, b any, inA, inB bool, out *[]fieldChange) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := slices.Sorted(maps.Keys(am))
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			x, inX := am[k]
			y, inY := bm[k]
			fieldChanges(fieldPath(path, k), x, y, inX, inY, out)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			fieldChanges(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], true, true, out)
		}
		return
	}
	if inA != inB || !reflect.DeepEqual(a, b) {
		*out = append(*out, fieldChange{path: path, old: shownValue(a, inA), new: shownValue(b, inB)})
	}
}

// fieldPath appends key k as jq and kubectl's JSONPath write it.
func fieldPath(path, k string) string {
	if strings.ContainsAny(k, `."[]`) || k == "" {
		b, _ := json.Marshal(k)
		return path + "[" + string(b) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// maxShown bounds a value in a field change; the YAML diff has it whole.
const maxShown = 80

func shownValue(v any, present bool) string {
	if !present {
		return "(none)"
	}
	if s, ok := v.(string); ok && (s == hiddenValue || s == changedValue) {
		return s
	}
	b, _ := json.Marshal(v)
	if len(b) > maxShown {
		return string(b[:maxShown-3]) + "..."
	}
	return string(b)
}

// unifiedYAML is the unified diff of an object's YAML, labelled as
// kubectl diff labels its files.
func unifiedYAML(id objects.ObjectID, a, b any) (string, error) {
	toYAML := func(v any) (string, error) {
		if v == nil {
			return "", nil
		}
		y, err := yaml.Marshal(v)
		return string(y), err
	}
	ya, err := toYAML(a)
	if err != nil {
		return "", err
	}
	yb, err := toYAML(b)
	if err != nil {
		return "", err
	}
	name := id.Kind + "." + cmp.Or(id.Namespace, "_") + "." + id.Name
	return udiff.Unified("applied/"+name, "new/"+name, ya, yb), nil
}

var opMarks = map[string]string{"added": "+", "removed": "-", "changed": "~"}

func writeDiff(w io.Writer, format string, diffs []objectDiff, from, source string) error {
	counts := map[string]int{}
	for _, d := range diffs {
		counts[d.op]++
	}
	summary := fmt.Sprintf("%d added, %d changed, %d removed", counts["added"], counts["changed"], counts["removed"])
	var b strings.Builder
	switch format {
	case "text":
		for _, d := range diffs {
			fmt.Fprintf(&b, "%s %s (%s)\n", opMarks[d.op], d.id, d.op)
			for _, f := range d.fields {
				fmt.Fprintf(&b, "    %s: %s → %s\n", f.path, f.old, f.new)
			}
		}
		if len(diffs) == 0 {
			fmt.Fprintf(&b, "no differences: %s matches the %s\n", source, from)
		} else {
			fmt.Fprintf(&b, "%s against the %s (%s)\n", summary, from, source)
		}
	case "diff":
		for _, d := range diffs {
			b.WriteString(d.unified)
		}
	case "markdown":
		if len(diffs) == 0 {
			fmt.Fprintf(&b, "### berth diff: no changes\n\n`%s` matches the %s.\n", source, from)
			break
		}
		fmt.Fprintf(&b, "### berth diff: %s\n\n`%s` against the %s.\n\n", summary, source, from)
		for _, d := range diffs {
			fence := codeFence(d.unified)
			fmt.Fprintf(&b, "<details><summary>%s <code>%s</code> (%s)</summary>\n\n%sdiff\n%s%s\n\n</details>\n\n",
				opMarks[d.op], d.id, d.op, fence, d.unified, fence)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// codeFence is a Markdown fence longer than any run of backticks in s, so
// no value can end the block early.
func codeFence(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}
