package server

import (
	"fmt"

	"github.com/stokehq/stoke/internal/admin"
)

// A function whose instances cannot start is contained: deployed and
// marked failing (its pool's Health, shown by `stoke ls`, the dashboard
// and /metrics), its requests answered at once with the init error, its
// keep_warm restarts backed off by the pool (1 s → 5 min). Every other
// function serves, at boot as at a deploy. This applies to a function with
// nothing to keep serving (at boot, or new in this deploy); a new version
// of a function that serves still fails the deploy, and the previous
// version keeps serving.

// failingAtDeploy reports d, deployed failing, in the deploy's result and
// the log.
func (s *Server) failingAtDeploy(res *admin.DeployResult, d *deployed, err error) {
	if res.Failing == nil {
		res.Failing = map[string]string{}
	}
	res.Failing[d.cfg.Name] = err.Error()
	s.log.Error("function is failing: its instances cannot start; it answers 502 with the init error and keeps retrying with backoff, while every other function serves",
		"function", d.cfg.Name, "version", d.version, "err", err)
	s.hub.Write(d.cfg.Name, "", "platform", fmt.Sprintf("FAILING version %d: instances cannot start: %v", d.version, err))
}
