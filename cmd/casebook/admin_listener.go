package main

import (
	"context"
	"flag"

	"github.com/casebookhq/casebook/casebook/metrics"
)

// adminFlags registers the admin listener's flag, for the commands that serve.
func (c *Config) adminFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Admin, "admin", "127.0.0.1:9090",
		"address of the admin listener: /healthz, /readyz and Prometheus /metrics (loopback by default, so it is not exposed by accident; empty turns it off)")
}

// promMetrics returns the process's metrics, created on first use so that every
// component counts into the same registry.
func (a *app) promMetrics() *metrics.Metrics {
	if a.metrics == nil {
		a.metrics = metrics.New()
	}
	return a.metrics
}

// adminServer returns the admin listener, created on first use so that components
// built before it can register their readiness checks.
func (a *app) adminServer() *metrics.Admin {
	if a.admin == nil {
		a.admin = metrics.NewAdmin(a.cfg.Admin, a.promMetrics(), a.log)
	}
	return a.admin
}

// ready registers a readiness check shown by /readyz (a mailbox poller's session).
func (a *app) ready(name string, c metrics.Check) {
	a.adminServer().Register(name, c)
}

// adminComponents serves /healthz, /readyz and /metrics when --admin is set.
func (a *app) adminComponents(ctx context.Context) ([]component, error) {
	if a.cfg.Admin == "" {
		return nil, nil
	}
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	a.promMetrics().WatchOutbox(st, a.log)
	a.promMetrics().WatchQuarantine(st, a.log)
	a.ready("postgres", st.Ping)
	return []component{{name: "admin", run: a.adminServer().Run}}, nil
}
