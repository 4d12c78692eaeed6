package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether a dependency is usable now; nil means ready.
type Check func(ctx context.Context) error

// checkTimeout bounds each readiness check, so that a load balancer's probe gets an
// answer before its own timeout even when a dependency hangs.
const checkTimeout = 3 * time.Second

// Admin is the operators' listener: /healthz, /readyz and /metrics. It is meant for a
// loopback or private address; it shows no case data, only counts and check results.
type Admin struct {
	addr    string
	metrics *Metrics
	log     *slog.Logger

	mu     sync.Mutex
	checks map[string]Check
}

// NewAdmin returns an admin listener for addr serving m; a nil log discards.
func NewAdmin(addr string, m *Metrics, log *slog.Logger) *Admin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Admin{addr: addr, metrics: m, log: log, checks: map[string]Check{}}
}

// Register adds a readiness check under name (the database, each mailbox poller).
// /readyz answers 503 while any check fails. Components may register as they start.
func (a *Admin) Register(name string, c Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = c
}

// Handler returns the admin routes.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	// The runtime profiler, so that a slow instance can be profiled where it runs:
	// go tool pprof http://ADMIN/debug/pprof/profile. The admin listener is on
	// loopback unless the operator says otherwise, and profiles hold no PHI beyond
	// function names (the command line shows flags, never secrets: those come
	// from files and the environment).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Ready runs every check at once and returns one line per check, sorted by name, and
// whether all passed.
func (a *Admin) Ready(ctx context.Context) ([]string, bool) {
	a.mu.Lock()
	names := make([]string, 0, len(a.checks))
	checks := make([]Check, 0, len(a.checks))
	for n := range a.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		checks = append(checks, a.checks[n])
	}
	a.mu.Unlock()

	lines := make([]string, len(names))
	ok := true
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			err := c(cctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				lines[i] = names[i] + ": " + oneLine(err)
				return
			}
			lines[i] = names[i] + ": ok"
		})
	}
	wg.Wait()
	return lines, ok
}

func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	lines, ok := a.Ready(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// Run listens on the configured address and serves until ctx ends.
func (a *Admin) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	return a.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then gives open requests a few seconds.
func (a *Admin) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// Long enough for a CPU profile or trace (30 s by default): net/http/pprof
		// refuses a duration past the server's write timeout.
		WriteTimeout: 5 * time.Minute,
		IdleTimeout:  60 * time.Second,
		ErrorLog:     slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.log.Info("admin listener ready", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("admin listener: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin listener: %w", err)
	}
	return nil
}
