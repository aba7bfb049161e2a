//go:build !unix

package bench

import "time"

// processCPU is not measured here; the objects/cpu-s metric is left out.
func processCPU() (time.Duration, bool) { return 0, false }
