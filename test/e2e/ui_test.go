package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// uiSecret is the value of the Secret the dashboard test commits, which a
// read-only token's page must never hold.
const uiSecret = "s3cr3t-v4lue-of-the-ui-test"

// TestDashboard drives the masters' dashboard in Debian's headless
// Chromium against a real master and agent: an admin signs in; a commit
// whose message is markup arrives and its pod goes Ready on the page
// without a reload; the pod's log streams; a read-only token's page lists
// the Secret but not its value. Screenshots (desktop and phone-sized) go
// to out/ui-*.png.
func TestDashboard(t *testing.T) {
	n := env.NewNodeNet(t, fmt.Sprintf("bui%d", os.Getpid()%100000), "10.245.0")
	n.AddAgent("n1")
	n.ReadyNodes(1, time.Minute)
	readOnly := n.Master.CreateToken("--role", "read-only", "--description", "dashboard test")

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		// The master's certificate is signed by the cluster's own CA,
		// which this browser profile does not know.
		chromedp.IgnoreCertErrors)...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := filepath.Abs("../../out")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML("html"))
			t.Fatalf("%s: %v\npage:\n%s", what, err, html)
		}
	}
	waitFor := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML("html"))
			t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, html)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(out, name), png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	signIn := func(token string) {
		t.Helper()
		run("opening the sign-in page", chromedp.Navigate(n.Master.URL+"/ui/"), chromedp.WaitVisible("#token"))
		waitFor("labelled form fields", `[...document.querySelectorAll("input, select")].every(e => e.labels.length > 0)`)
		run("signing in", chromedp.SendKeys("#token", token+kb.Enter), chromedp.WaitVisible("#live-pods"))
		waitFor("the page to go live", `document.getElementById("live-state").textContent.startsWith("Live")`)
	}

	signIn(n.Master.AdminToken())
	run("tabbing to the skip link", chromedp.KeyEvent(kb.Tab))
	waitFor("the skip link focused and shown", `document.activeElement.matches("a.skip") && document.activeElement.getBoundingClientRect().left >= 0`)
	// A reload would drop this mark.
	run("marking the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	n.CommitMessage(`<script>window.injected = true</script> deploy web`, map[string]string{
		"web.yaml":    n.Deployment("web", 1),
		"secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: apps}\nstringData: {password: " + uiSecret + "}\n",
	})
	start := time.Now()
	waitFor("the pod Ready on the page", `[...document.querySelectorAll("#live-pods tbody tr")].some(r =>
		r.textContent.includes("apps/web-") && r.querySelector(".badge.ok"))`)
	t.Logf("pod Ready on the page %s after the commit", time.Since(start).Round(100*time.Millisecond))
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true && window.injected === undefined &&
		[...document.querySelectorAll("#live-revisions .message")].some(m => m.textContent.startsWith("<script>window.injected"))`)); err != nil || !ok {
		t.Errorf("the page reloaded, ran the commit message or did not show it as text (%v)", err)
	}
	waitFor("the Deployment's rollout done", `document.querySelector("#live-workloads progress").value === 1`)
	waitFor("the revision converged, in the CLI's words", `[...document.querySelectorAll("#live-revisions tbody tr")].some(r =>
		r.textContent.includes("deploy web") && /converged in [0-9.]+m?s/.test(r.textContent))`)
	waitFor("the signed-in role in the header", `document.querySelector("header .who").textContent.includes("admin")`)
	if html, _ := chromedp.Run(ctx, chromedp.OuterHTML("#live-secrets")); !strings.Contains(html, uiSecret) {
		t.Errorf("an admin's page holds no value of the Secret:\n%s", html)
	}
	shot("ui-dashboard.png")

	run("opening the pod", chromedp.Click(`#live-pods a[href^="/ui/pods/apps/web-"]`), chromedp.WaitVisible("#log"))
	waitFor("the log", `document.getElementById("log").textContent.includes("hello: listening")`)
	waitFor("the pod's events", `[...document.querySelectorAll("#live-pod-events tbody tr")].some(r => r.textContent.includes("Scheduled")) &&
		[...document.querySelectorAll("#live-pod-events tbody tr")].some(r => r.textContent.includes("Started"))`)
	shot("ui-pod-log.png")

	run("phone-sized", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(n.Master.URL+"/ui/"), chromedp.WaitVisible("#live-pods"))
	if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || wide {
		t.Errorf("the phone-sized page scrolls sideways as a whole (%v); only its tables may", err)
	}
	shot("ui-phone.png")
	run("back to desktop", chromedp.EmulateViewport(1280, 900))

	run("signing out", chromedp.Navigate(n.Master.URL+"/ui/"), chromedp.WaitVisible("#live-pods"), chromedp.Click(`button[type="submit"]`), chromedp.WaitVisible("#token"))
	signIn(readOnly)
	waitFor("the read-only role in the header", `document.querySelector("header .who").textContent.includes("read-only")`)
	html, err := chromedp.Run(ctx, chromedp.OuterHTML("html"))
	if err != nil || strings.Contains(html, uiSecret) || !strings.Contains(html, "apps/db") || !strings.Contains(html, "hidden: an admin token reads values") {
		t.Errorf("a read-only token's page (%v):\n%s", err, html)
	}
	shot("ui-readonly.png")
}
