package schemas

import (
	"strings"
	"testing"

	"github.com/berth/berth/schemas/objects"
)

const jobYAML = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: m
          image: example/migrate:1
`

const cronJobYAML = `apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "*/5 * * * *"
  timeZone: Europe/Paris
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: r
              image: example/report:1
`

func TestBatchKinds(t *testing.T) {
	res := loadRepo(t, map[string]string{"j.yaml": jobYAML, "c.yaml": cronJobYAML})
	assertDiags(t, res)
	for _, o := range res.Objects {
		switch v := o.Object.(type) {
		case *objects.Job:
			if v.Spec.Completions != 1 || v.Spec.Parallelism != 1 || v.Spec.BackoffLimit != 2 {
				t.Errorf("job defaults: %+v", v.Spec)
			}
		case *objects.CronJob:
			if v.Spec.SuccessfulJobsHistoryLimit != 3 || v.Spec.FailedJobsHistoryLimit != 1 || v.Spec.JobTemplate.Spec.BackoffLimit != 6 {
				t.Errorf("cronjob defaults: %+v", v.Spec)
			}
		default:
			t.Errorf("unexpected %T", v)
		}
	}
	for _, tc := range []struct {
		name, file, yaml, want string
	}{
		{"a Job that restarts Always", "j.yaml", strings.Replace(jobYAML, "restartPolicy: Never", "restartPolicy: Always", 1),
			"j.yaml:8:22: error: spec.template.spec.restartPolicy: must be Never or OnFailure for a Job"},
		{"a Job without restartPolicy", "j.yaml", strings.Replace(jobYAML, "      restartPolicy: Never\n", "", 1),
			"j.yaml:7:5: error: spec.template.spec.restartPolicy: must be Never or OnFailure for a Job"},
		{"a Job with a selector", "j.yaml", strings.Replace(jobYAML, "  backoffLimit: 2", "  selector: {}", 1),
			"j.yaml:5:3: error: spec.selector: berth does not support this field"},
		{"a bad schedule", "c.yaml", strings.Replace(cronJobYAML, "*/5 * * * *", "every 5 minutes", 1),
			"c.yaml:5:13: error: spec.schedule: is not a cron schedule"},
		{"a time zone in the schedule", "c.yaml", strings.Replace(cronJobYAML, "*/5 * * * *", "CRON_TZ=UTC */5 * * * *", 1),
			"c.yaml:5:13: error: spec.schedule: must not name a time zone: set spec.timeZone"},
		{"an unknown time zone", "c.yaml", strings.Replace(cronJobYAML, "Europe/Paris", "Mars/Olympus", 1),
			`c.yaml:6:13: error: spec.timeZone: "Mars/Olympus" is not a time zone`},
		{"a bad concurrencyPolicy", "c.yaml", strings.Replace(cronJobYAML, "Forbid", "Sometimes", 1),
			"c.yaml:7:22: error: spec.concurrencyPolicy:"},
		{"a Deployment that never restarts", "d.yaml", strings.Replace(deployYAML, "    spec:\n", "    spec:\n      restartPolicy: Never\n", 1),
			"spec.template.spec.restartPolicy: must be Always for a Deployment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := loadRepo(t, map[string]string{tc.file: tc.yaml})
			if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), tc.want) {
				t.Errorf("want one diagnostic %q, got %v", tc.want, res.Diagnostics)
			}
		})
	}
}

func TestDaemonSet(t *testing.T) {
	ds := `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {disk: ssd}
      containers:
        - name: a
          image: example/agent:1
`
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: agent}\nspec:\n  selector: {app: agent}\n  ports: [{port: 80}]\n"
	res := loadRepo(t, map[string]string{"d.yaml": ds, "s.yaml": svc})
	assertDiags(t, res)
	for _, o := range res.Objects {
		if d, ok := o.Object.(*objects.DaemonSet); ok {
			if ru := d.Spec.UpdateStrategy.RollingUpdate; d.Spec.UpdateStrategy.Type != "RollingUpdate" || ru == nil || ru.MaxUnavailable.Int != 1 || ru.MaxSurge.Int != 0 {
				t.Errorf("defaults: %+v", d.Spec.UpdateStrategy)
			}
		}
	}
	res = loadRepo(t, map[string]string{"d.yaml": strings.Replace(ds, "labels: {app: agent}", "labels: {app: other}", 1)})
	if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), "spec.selector: does not match the pod template's labels") {
		t.Errorf("a selector that misses: %v", res.Diagnostics)
	}
}
