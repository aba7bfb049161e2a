package agent

import (
	"context"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/action"
	"github.com/berth/berth/schemas/objects"
)

// probeOnce runs one probe against a container within timeoutSeconds.
func probeOnce(ctx context.Context, p *objects.Probe, t action.Target) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.TimeoutSeconds)*time.Second)
	defer cancel()
	return action.Run(ctx, &p.Handler, t)
}

// probeOnce runs one probe of container and records its failure, as the
// kubelet's Unhealthy event: each failure is one occurrence, folded into
// one event with a count until the events are reported.
func (w *podWorker) probeOnce(ctx context.Context, pod *state.Pod, container, kind string, p *objects.Probe, t action.Target, now time.Time) error {
	err := probeOnce(ctx, p, t)
	if err != nil {
		w.a.record(pod, state.EventWarning, "Unhealthy", now, "%s probe failed (container %s): %v", kind, container, err)
	}
	return err
}

// probeState tracks one probe of one container.
type probeState struct {
	probe   *objects.Probe
	ok      bool // current result
	streak  int  // consecutive results opposite to ok
	next    time.Time
	lastErr error
}

// newProbeState starts readiness as failing and liveness as passing, both
// first run after initialDelaySeconds.
func newProbeState(p *objects.Probe, initial bool, started time.Time) *probeState {
	return &probeState{probe: p, ok: initial, next: started.Add(time.Duration(p.InitialDelaySeconds) * time.Second)}
}

// due reports whether the probe should run at now.
func (s *probeState) due(now time.Time) bool { return !now.Before(s.next) }

// record takes one outcome and reports whether the result flipped: it
// takes successThreshold successes in a row to pass and failureThreshold
// failures in a row to fail.
func (s *probeState) record(now time.Time, err error) bool {
	s.next = now.Add(time.Duration(s.probe.PeriodSeconds) * time.Second)
	s.lastErr = err
	success := err == nil
	if success == s.ok {
		s.streak = 0
		return false
	}
	s.streak++
	need := int(s.probe.FailureThreshold)
	if success {
		need = int(s.probe.SuccessThreshold)
	}
	if s.streak >= need {
		s.ok, s.streak = success, 0
		return true
	}
	return false
}
