package webui_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tlstap/tlstap/internal/kube/kubetest"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestPodDetail: with a live `tlstap tls --pods` (a fake docker socket
// naming the pod of a container cgroup the test creates), the detail pane
// of curl's exchange shows its container, pod and namespace (the pod
// filter keys run in Chromium in TestFilterJSInChromium).
func TestPodDetail(t *testing.T) {
	testenv.RequireRoot(t, "live capture and creating cgroups")
	cg := testenv.NewContainerCgroup(t)
	rt := kubetest.NewRuntime(t, "docker")
	rt.Add(cg.Container, "shop", "web-7d9f8b6c5-abcde")
	ngx := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"p.txt": []byte("pod\n")}})
	tl := startTlstap(t, "tls", "--comm", "curl", "--pods", rt.Spec)
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(tl.stderr.String(), "msg=capturing") {
		if time.Now().After(deadline) {
			t.Fatalf("tlstap did not start capturing:\n%s", tl.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := browser(t)
	art := artifacts(t)
	run(t, ctx, "open the page", chromedp.Navigate(tl.page))
	waitConn(t, ctx, "live")

	// The first exchange may go out before the runtime has answered
	// (lookups never hold events back): fetch until an exchange's
	// detail names the pod.
	for i := 0; ; i++ {
		path := fmt.Sprintf("/p.txt?i=%d", i)
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		curl := exec.CommandContext(cctx, "curl", "-sS", "--http1.1", "--cacert", ngx.Cert.CertFile, "-o", "/dev/null", ngx.URL(path))
		cg.Place(curl)
		out, err := curl.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		rows := waitRows(t, ctx, path, func(rs []pageRow) bool {
			for _, r := range rs {
				if r.Path == path && r.Resp != 0 {
					return true
				}
			}
			return false
		})
		for _, r := range rows {
			if r.Path == path {
				run(t, ctx, "click "+path, chromedp.Click(fmt.Sprintf(`#rows .row[data-id="%d"]`, r.ID), chromedp.ByQuery))
			}
		}
		d := text(t, ctx, "#detail-body")
		if strings.Contains(d, "podweb-7d9f8b6c5-abcde") {
			for _, want := range []string{"container" + cg.Container, "namespaceshop"} {
				if !strings.Contains(d, want) {
					t.Errorf("detail lacks %q:\n%s", want, d)
				}
			}
			screenshot(t, ctx, art, "pod-detail")
			break
		}
		if i == 20 {
			t.Fatalf("no exchange's detail names the pod after %d fetches; last:\n%s", i+1, d)
		}
	}
}
