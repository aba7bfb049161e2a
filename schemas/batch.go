package schemas

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// jobChecks covers a Job's spec at at: its pods must end, so restartPolicy
// is Never or OnFailure, as Kubernetes requires.
func jobChecks(r *report, f *facts, at []any, spec *objects.JobSpec) {
	if rp := spec.Template.Spec.RestartPolicy; rp != "Never" && rp != "OnFailure" {
		r.add(diag.Error, diag.RuleSchema, join(at, "template", "spec", "restartPolicy"), "must be Never or OnFailure for a Job, whose pods run to completion (Always is a Deployment's)")
	}
	podChecks(r, f, join(at, "template", "spec"), &spec.Template.Spec)
}

// maxCronJobName leaves room for the 11 characters a CronJob's Jobs add
// to its name, as Kubernetes allows 52.
const maxCronJobName = 52

func cronJobChecks(r *report, f *facts, cj *objects.CronJob) {
	if len(cj.Metadata.Name) > maxCronJobName {
		r.add(diag.Error, diag.RuleSchema, []any{"metadata", "name"}, "must be at most %d characters: the CronJob's Jobs add 11 to it", maxCronJobName)
	}
	if s := cj.Spec.Schedule; strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "schedule"}, "must not name a time zone: set spec.timeZone, as Kubernetes requires")
	} else if _, err := cron.ParseStandard(s); err != nil {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "schedule"}, "is not a cron schedule (minute hour day-of-month month day-of-week, or @hourly and the like): %s", Excerpt(err.Error()))
	}
	if tz := cj.Spec.TimeZone; tz != "" {
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
			r.add(diag.Error, diag.RuleSchema, []any{"spec", "timeZone"}, "%s is not a time zone of the IANA database, such as Europe/Paris", Excerpt(tz))
		}
	}
	jobChecks(r, f, []any{"spec", "jobTemplate", "spec"}, &cj.Spec.JobTemplate.Spec)
}
