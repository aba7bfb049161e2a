package reconcile

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

func newCronJob(name, schedule string) *objects.CronJob {
	c := &objects.CronJob{}
	c.APIVersion, c.Kind = "batch/v1", "CronJob"
	c.Metadata = objects.ObjectMeta{Name: name, Namespace: "default"}
	c.Spec = objects.CronJobSpec{Schedule: schedule, TimeZone: "UTC", ConcurrencyPolicy: "Allow", SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 1}
	c.Spec.JobTemplate.Spec = job("", 1, 1, 6).Spec
	return c
}

// runs lists the CronJob's Job runs by name.
func (h *harness) runs(cron string) []string {
	var out []string
	for _, j := range h.s.Jobs {
		if j.CronJob == cron {
			out = append(out, j.Name)
		}
	}
	slices.Sort(out)
	return out
}

// step moves the clock by d in 1 s passes, finishing every Job pod with
// end after the pass that started it.
func (h *harness) step(d time.Duration, end func(*state.Pod) state.PodPhase) {
	for stop := h.now.Add(d); h.now.Before(stop); {
		h.now = h.now.Add(time.Second)
		h.control()
		if end != nil {
			for _, j := range h.s.Jobs {
				h.finish(j.Name, end)
			}
		}
	}
}

func minuteName(cron string, t time.Time) string {
	return cron + "-" + strconv.FormatInt(t.Unix()/60, 10)
}

// A CronJob first seen runs at its next schedule time, once per time, in
// its time zone; finished runs beyond the history limit go.
func TestCronJobSchedule(t *testing.T) {
	h := newHarness(t, node("a"))
	h.now = time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	h.commit(newCronJob("tick", "*/5 * * * *"))
	h.step(4*time.Minute, succeed) // 00:04:30
	if r := h.runs("tick"); len(r) != 0 {
		t.Fatalf("runs before the first schedule time: %v", r)
	}
	h.step(time.Minute, succeed) // 00:05:30
	if r := h.runs("tick"); !slices.Equal(r, []string{minuteName("tick", time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC))}) {
		t.Fatalf("after 00:05: %v", r)
	}
	if st := h.s.Jobs["default/"+minuteName("tick", time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC))]; !st.ScheduledTime.Equal(time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)) || st.Status.Condition != state.JobComplete {
		t.Fatalf("run: %+v", st)
	}
	h.step(20*time.Minute, succeed) // runs at 10, 15, 20, 25: 3 kept
	if r := h.runs("tick"); !slices.Equal(r, []string{minuteName("tick", time.Date(2026, 1, 1, 0, 15, 0, 0, time.UTC)), minuteName("tick", time.Date(2026, 1, 1, 0, 20, 0, 0, time.UTC)), minuteName("tick", time.Date(2026, 1, 1, 0, 25, 0, 0, time.UTC))}) {
		t.Fatalf("history: %v", r)
	}
	if evs := eventsOf(h.s, "CronJob", "tick"); !hasEvent(evs, "Normal SuccessfulCreate x1: Created job "+minuteName("tick", time.Date(2026, 1, 1, 0, 25, 0, 0, time.UTC))) {
		t.Errorf("CronJob events = %q", evs)
	}

	// 9:00 in Tokyo is midnight UTC.
	h2 := newHarness(t, node("a"))
	h2.now = time.Date(2026, 1, 1, 23, 59, 0, 0, time.UTC)
	c := newCronJob("daily", "0 9 * * *")
	c.Spec.TimeZone = "Asia/Tokyo"
	h2.commit(c)
	h2.step(2*time.Minute, nil)
	if r := h2.runs("daily"); len(r) != 1 || !h2.s.Jobs["default/"+r[0]].ScheduledTime.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Tokyo's 9:00: %v", r)
	}
}

// Missed times (a leader change, a master down) run once, the latest, as
// Kubernetes does; not at all past startingDeadlineSeconds.
func TestCronJobMissedRunsCatchUpOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline *int64
		want     int
	}{{"no deadline", nil, 1}, {"within the deadline", ptr(int64(300)), 1}, {"past the deadline", ptr(int64(10)), 0}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, node("a"))
			h.now = time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
			c := newCronJob("tick", "* * * * *")
			c.Spec.StartingDeadlineSeconds = tc.deadline
			h.commit(c)
			h.control()
			// No leader for an hour: back at 01:03:20, 20 s after the
			// latest missed time.
			h.now = h.now.Add(62*time.Minute + 50*time.Second)
			h.control()
			if r := h.runs("tick"); len(r) != tc.want {
				t.Fatalf("runs after an hour without a leader: %v, want %d", r, tc.want)
			}
			if tc.want == 1 && h.runs("tick")[0] != minuteName("tick", time.Date(2026, 1, 1, 1, 3, 0, 0, time.UTC)) {
				t.Fatalf("the catch-up run %v is not the latest missed time", h.runs("tick"))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Forbid waits for the active run; Replace ends it; suspend runs nothing.
func TestCronJobConcurrencyAndSuspend(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"Allow", []string{minuteName("tick", time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)), minuteName("tick", time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)), minuteName("tick", time.Date(2026, 1, 1, 0, 3, 0, 0, time.UTC))}},
		{"Forbid", []string{minuteName("tick", time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC))}},
		{"Replace", []string{minuteName("tick", time.Date(2026, 1, 1, 0, 3, 0, 0, time.UTC))}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			h := newHarness(t, node("a"))
			h.now = time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
			c := newCronJob("tick", "* * * * *")
			c.Spec.ConcurrencyPolicy = tc.policy
			h.commit(c)
			h.step(3*time.Minute, nil) // the runs never end
			if r := h.runs("tick"); !slices.Equal(r, tc.want) {
				t.Fatalf("runs: %v, want %v", r, tc.want)
			}
		})
	}
	h := newHarness(t, node("a"))
	c := newCronJob("tick", "* * * * *")
	c.Spec.Suspend = true
	h.commit(c)
	h.step(3*time.Minute, nil)
	if r := h.runs("tick"); len(r) != 0 {
		t.Fatalf("a suspended CronJob ran %v", r)
	}
	h.commit() // removed: its schedule is forgotten
	h.control()
	if len(h.s.CronSchedules) != 0 {
		t.Fatalf("schedules after removal: %v", h.s.CronSchedules)
	}
}
