package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/diag"
)

// SARIF file locations are URI references: a file name with a space, # or %
// is percent-encoded segment by segment; the tool carries berth's version.
func TestSARIFURIsAndVersion(t *testing.T) {
	res := &schemas.Result{Diagnostics: []diag.Diagnostic{{Severity: diag.Error, Rule: diag.RuleSchema, Message: "m",
		Position: diag.Position{File: "apps/my app/#1 100%.yaml", Line: 2, Column: 3}}}}
	var buf bytes.Buffer
	if err := Write(&buf, "sarif", res, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Tool    struct{ Driver struct{ Version string } }
			Results []struct {
				Locations []struct {
					PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
				}
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if got := run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI; got != "apps/my%20app/%231%20100%25.yaml" {
		t.Errorf("uri %q", got)
	}
	if run.Tool.Driver.Version != "v1.2.3" {
		t.Errorf("driver version %q", run.Tool.Driver.Version)
	}
}
