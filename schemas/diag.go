package schemas

import (
	"sort"

	"github.com/berth/berth/schemas/diag"
)

// sortDiagnostics orders by file, line, column, then message, so output is
// stable whatever order the workers finished in.
func sortDiagnostics(ds []diag.Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
}
