package cli

import (
	"net"
	"time"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	"github.com/tlstap/tlstap/internal/webui"
)

// mountAPI serves the configuration, status and metrics API on the main
// listener, changing e in place through an engine.Applier. src is the
// live capture source, nil for replay and demo. Call it before
// f.add(e) and before e.Run.
func mountAPI(f *serviceFlags, e *engine.Engine, src engine.CaptureControl) *engine.Applier {
	ap := e.NewApplier(src)
	ap.Output = e.Output
	stateDir := f.srv.StateDir
	if stateDir == "" {
		stateDir = tlsauth.DefaultStateDir()
	}
	a := api.New(api.Options{
		Config:   e.Opts.Config,
		Applier:  ap,
		StateDir: stateDir,
		Stats:    e.Stats,
		Log:      e.Log,
		Status:   ap.RunStatus,
		Version:  versionString(),
		Started:  e.Started,
	})
	f.setupServers = append(f.setupServers, func(s *server.Server) {
		a.Mount(s)
		webui.MountResend(s, webui.ResendOptions{
			Broker:      e.Broker,
			Config:      func() config.Config { c, _ := a.Config(); return c },
			DialContext: e.Self.DialContext(&net.Dialer{Timeout: 10 * time.Second}),
			Log:         e.Log,
		})
	})
	return ap
}
