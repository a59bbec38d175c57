package e2e

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestContainerAttribution creates a cgroup named as docker's systemd
// driver names a container's, starts curl inside it (clone3 into the
// cgroup, so the process never runs elsewhere), captures its requests to
// nginx live, and requires every curl event to carry the cgroup's id (its
// directory's inode) and the container id the name holds; nginx, outside,
// carries neither container nor that cgroup.
func TestContainerAttribution(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF and creating cgroups")
	cg := testenv.NewContainerCgroup(t)
	cgroup, id, dir := cg.ID, cg.Container, cg.Dir

	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"c.txt": []byte("contained\n")}})
	src, err := openssl.New(openssl.Options{Filter: openssl.Filter{Comms: []string{"curl", "nginx"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := config.Default()
	cfg.Output.Format = "none"
	e := engine.New(engine.Options{Config: cfg, Exit: true, Live: true, Stdout: io.Discard, Stderr: testWriter{t}})
	events := collect(e)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, src) }()

	cmd := exec.Command("curl", "-sS", "-k", "-o", "/dev/null", "--http1.1", srv.URL("/c.txt"), srv.URL("/c.txt"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cg.Place(cmd)
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl in %s: %v\n%s", dir, err, out.String())
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for events.responses(pid) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	var curl, nginx int
	for _, ev := range events.all() {
		switch int(ev.GetPid()) {
		case pid:
			curl++
			if ev.GetCgroupId() != cgroup || ev.GetContainerId() != id {
				t.Errorf("curl event #%d: cgroup_id %d container_id %q, want %d %q", ev.GetSeq(), ev.GetCgroupId(), ev.GetContainerId(), cgroup, id)
			}
		case srv.Proc.PID():
			nginx++
			if ev.GetCgroupId() == cgroup || ev.GetContainerId() != "" || ev.GetCgroupId() == 0 {
				t.Errorf("nginx event #%d: cgroup_id %d container_id %q, want its own cgroup and no container", ev.GetSeq(), ev.GetCgroupId(), ev.GetContainerId())
			}
		}
	}
	if curl < 4 || nginx < 4 {
		t.Fatalf("%d curl and %d nginx events, want 4 each (2 requests, 2 responses)", curl, nginx)
	}
	t.Logf("%d curl events in cgroup %d (%s), %d nginx events outside", curl, cgroup, dir, nginx)
}
