package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/images"
	"github.com/berth/berth/test/harness"
)

// shopImages are the images examples/shop names, and the web's next one.
var shopImages = []string{"berth/shop-web:1", "berth/shop-web:2", "berth/shop-api:1", "berth/redis:7"}

// TestShop runs examples/shop as it is, its images from the test's
// registry, on two nodes: through the web Service's node port on either
// node, an item added on the page shows on the page, which proves web ->
// api -> redis by Service names (the pods' DNS) and the Secret's password.
// A new web image rolls out and the item stays; git revert rolls back.
func TestShop(t *testing.T) {
	start := time.Now()
	// Built while the nodes start.
	built := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for _, ref := range shopImages {
			img, err := images.Example(ctx, env.Registry.Ref(ref))
			if err == nil {
				_, err = env.Registry.Push(ctx, ref, img)
			}
			if err != nil {
				built <- err
				return
			}
		}
		built <- nil
	}()
	c := newTwoNodes(t, fmt.Sprintf("bsh%d", os.Getpid()%100000), "10.250.0")
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: two nodes up, images built", time.Since(start).Round(time.Second))
	logShopPods(t, c)

	// The nodes pull through the relay on their network.
	registry, _, _ := strings.Cut(c.image, "/")
	web := filepath.Join(c.repo.dir, "shop", "web.yaml")
	if err := os.CopyFS(filepath.Dir(web), os.DirFS("../../examples/shop")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(c.repo.dir, "shop", "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(f, []byte(strings.ReplaceAll(string(b), "localhost:5000/", registry+"/")), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c.repo.git("add", ".")
	c.repo.git("commit", "-q", "-m", "the shop")
	c.readyPods(t, 5) // web and api 2 each, redis
	t.Logf("%s: the shop's 5 pods ready", time.Since(start).Round(time.Second))

	front := map[string]string{} // node -> the web's node port there
	for _, n := range c.nodes {
		front[n] = "http://" + c.ip[n] + ":30080"
	}
	item := fmt.Sprintf("teapot <%d>", os.Getpid())
	harness.Eventually(t, "an item added through the front end on n1", time.Minute, func() error {
		return addItem(front["n1"], item)
	})
	harness.Eventually(t, "the item on the page on n2", time.Minute, func() error {
		return pageShows(front["n2"], "1", item)
	})

	// A new web image rolls out with the page served throughout, and
	// the item stays; git revert rolls back.
	rollout := func(version string, commit func()) {
		t.Helper()
		served := watchPage(front["n1"], item)
		commit()
		harness.Eventually(t, "the web's rollout to version "+version, 2*time.Minute, func() error {
			ds, err := c.admin.Deployments(context.Background())
			for _, d := range ds {
				if d.Namespace == "shop" && d.Name == "web" && (d.Ready != 2 || d.UpToDate != 2 || d.Terminating != 0 ||
					len(d.Images) != 1 || !strings.HasSuffix(d.Images[0], "/berth/shop-web:"+version)) {
					err = fmt.Errorf("web: %+v", d)
				}
			}
			return err
		})
		for _, n := range c.nodes {
			harness.Eventually(t, "the page at version "+version+" on "+n, 30*time.Second, func() error {
				return pageShows(front[n], version, item)
			})
		}
		ok, failed := served()
		t.Logf("%s: the web at version %s; during the rollout %d requests for the page were answered, %d failed",
			time.Since(start).Round(time.Second), version, ok, len(failed))
		if len(failed) > 0 {
			t.Errorf("page requests failed during the rollout: %v", failed)
		}
	}
	rollout("2", func() {
		b, err := os.ReadFile(web)
		if err == nil {
			err = os.WriteFile(web, []byte(strings.Replace(string(b), "/berth/shop-web:1", "/berth/shop-web:2", 1)), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.repo.git("commit", "-q", "-am", "web 2")
	})
	rollout("1", func() { c.repo.git("revert", "--no-edit", "HEAD") })
}

// addItem posts the front end's form, as a browser does.
func addItem(base, name string) error {
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(base+"/items", url.Values{"name": {name}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s/items: %s %s", base, resp.Status, b)
	}
	return nil
}

var pageMeta = regexp.MustCompile(`version (\S*) · page from (\S+) · items from (\S+)`)

// pageShows asks for the page 20 times: every answer must be at version
// with the item listed (HTML-escaped), and both web pods must answer.
func pageShows(base, version, item string) error {
	pods := map[string]bool{}
	for range 20 {
		pod, v, err := page(base, item)
		if err != nil {
			return err
		}
		if v != version {
			return fmt.Errorf("GET %s/: version %s from %s, want %s", base, v, pod, version)
		}
		pods[pod] = true
	}
	if len(pods) != 2 {
		return fmt.Errorf("20 requests to %s reached %v, want both web pods", base, pods)
	}
	return nil
}

// page gets the page and says which web pod served it at which version;
// an error unless it lists the item, from an API pod.
func page(base, item string) (pod, version string, err error) {
	code, body, err := getPage(base + "/")
	if err != nil {
		return "", "", err
	}
	m := pageMeta.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		return "", "", fmt.Errorf("GET %s/: %d\n%s", base, code, body)
	}
	if want := "<li>" + strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(item) + "</li>"; !strings.Contains(body, want) {
		return "", "", fmt.Errorf("GET %s/ (from %s, %s): no %s\n%s", base, m[2], m[3], want, body)
	}
	return m[2], m[1], nil
}

// watchPage asks for the page every 50 ms until the returned func is
// called, which says how many answers were right and the failures.
func watchPage(base, item string) func() (int, []error) {
	var (
		ok     int
		failed []error
		stop   = make(chan struct{})
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, _, err := page(base, item); err != nil {
				failed = append(failed, err)
			} else {
				ok++
			}
		}
	}()
	return func() (int, []error) {
		close(stop)
		<-done
		return ok, failed
	}
}

func getPage(u string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// logShopPods logs, if the test fails, each shop pod's status and last
// log lines: a name the pods' DNS did not resolve shows there.
func logShopPods(t *testing.T, c *twoNodes) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		deployments, err := c.admin.Deployments(ctx)
		t.Logf("deployments: %+v %v", deployments, err)
		pods, _, err := c.admin.Pods(ctx, "", nil)
		if err != nil {
			t.Logf("pods: %v", err)
			return
		}
		for _, p := range pods {
			if p.Namespace != "shop" {
				continue
			}
			var log strings.Builder
			err := c.admin.Logs(ctx, p.Namespace, p.Name, "", false, &log)
			s := log.String()
			t.Logf("pod %s on %s: %+v (logs: %v)\n%s", p.Name, p.NodeName, p.Status, err, s[max(0, len(s)-2000):])
		}
	})
}
