// Package metrics holds casebook's Prometheus metrics and the admin listener that
// serves them with the health and readiness checks.
//
// Every collector lives in a Registry owned by a Metrics value, never in the
// client library's global registry, so tests and several services in one process
// do not share counters.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/casebookhq/casebook/casebook"
)

// Metrics is the set of casebook's metrics.
type Metrics struct {
	reg *prometheus.Registry

	messagesFetched  *prometheus.CounterVec
	updatesAdded     *prometheus.CounterVec
	duplicates       *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	quarantined      *prometheus.CounterVec
	attachmentBytes  *prometheus.CounterVec
	infected         *prometheus.CounterVec
	imapReconnects   *prometheus.CounterVec
	idleWakeToCommit *prometheus.HistogramVec
	httpDuration     *prometheus.HistogramVec
}

var _ casebook.Observer = (*Metrics)(nil)

// New returns the metrics registered in a fresh registry, with the Go runtime and
// process collectors beside them.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		messagesFetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_imap_messages_fetched_total",
			Help: "Messages fetched from IMAP mailboxes and handed to the mail processor.",
		}, []string{"mailbox"}),
		updatesAdded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_updates_added_total",
			Help: "Updates committed to cases, by channel.",
		}, []string{"source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_updates_duplicate_total",
			Help: "Updates that were already stored (a replay of the same input), by channel.",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_updates_rejected_total",
			Help: "Updates the write path refused, by channel and reason.",
		}, []string{"source", "reason"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_quarantined_total",
			Help: "Messages filed for a person to look at instead of a case, by reason.",
		}, []string{"reason"}),
		attachmentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_attachment_bytes_total",
			Help: "Bytes of attachments added to cases, by channel.",
		}, []string{"source"}),
		infected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_files_infected_total",
			Help: "Files refused because the malware scanner found a signature in them, by channel.",
		}, []string{"source"}),
		imapReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebook_imap_reconnects_total",
			Help: "IMAP sessions opened again after a drop or an error.",
		}, []string{"mailbox"}),
		idleWakeToCommit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "casebook_imap_idle_wake_to_commit_seconds",
			Help: "Time from an IMAP IDLE notice of new mail to the commit of its update.",
			// Dovecot batches IDLE notices by about 0.5 s, so finer buckets below that
			// would stay empty against it.
			Buckets: []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60},
		}, []string{"mailbox"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "casebook_http_request_duration_seconds",
			Help:    "Time to answer web requests, by route pattern, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "code"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.messagesFetched, m.updatesAdded, m.duplicates, m.rejected, m.quarantined,
		m.attachmentBytes, m.infected, m.imapReconnects, m.idleWakeToCommit, m.httpDuration,
	)
	return m
}

// Registry returns the registry the metrics live in, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveUpdate counts one AddUpdate call: added, duplicate, or refused with a reason.
func (m *Metrics) ObserveUpdate(source casebook.Source, o casebook.Outcome, err error) {
	src := string(source)
	switch {
	case err != nil:
		m.rejected.WithLabelValues(src, Reason(err)).Inc()
		if errors.Is(err, casebook.ErrInfected) {
			m.infected.WithLabelValues(src).Inc()
		}
	case o.Result == casebook.ResultDuplicate:
		m.duplicates.WithLabelValues(src).Inc()
	default:
		m.updatesAdded.WithLabelValues(src).Inc()
		var n int64
		for _, a := range o.Attachments {
			n += a.Size
		}
		m.attachmentBytes.WithLabelValues(src).Add(float64(n))
	}
}

// reasons names the domain's refusals as metric labels. Anything else is "error":
// labels must come from a fixed set, never from an error's text.
var reasons = []struct {
	err   error
	label string
}{
	{casebook.ErrNoCaseRef, "no_case_ref"},
	{casebook.ErrCaseNotFound, "case_not_found"},
	{casebook.ErrAmbiguousCase, "ambiguous_case"},
	{casebook.ErrNotAllowed, "not_allowed"},
	{casebook.ErrUserDisabled, "user_disabled"},
	{casebook.ErrCaseClosed, "case_closed"},
	{casebook.ErrTooLarge, "too_large"},
	{casebook.ErrTooManyFiles, "too_many_files"},
	{casebook.ErrFileTypeNotAllowed, "file_type_not_allowed"},
	{casebook.ErrInvalidInput, "invalid_input"},
	{casebook.ErrInfected, "malware"},
	{casebook.ErrScanUnavailable, "scan_unavailable"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

// Reason maps an error to a short label from a fixed set.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "error"
}

// MessageFetched counts a message fetched from mailbox.
func (m *Metrics) MessageFetched(mailbox string) {
	m.messagesFetched.WithLabelValues(mailbox).Inc()
}

// Quarantined counts a message quarantined for reason, which must be one of a
// fixed set of short labels.
func (m *Metrics) Quarantined(reason string) {
	m.quarantined.WithLabelValues(reason).Inc()
}

// IMAPReconnect counts a new session to mailbox after a lost one.
func (m *Metrics) IMAPReconnect(mailbox string) {
	m.imapReconnects.WithLabelValues(mailbox).Inc()
}

// IdleWakeToCommit records how long mail took from the IDLE notice to its commit.
func (m *Metrics) IdleWakeToCommit(mailbox string, d time.Duration) {
	m.idleWakeToCommit.WithLabelValues(mailbox).Observe(d.Seconds())
}

// HTTP wraps a handler, timing each request by the ServeMux pattern it matched
// (never the raw path, which holds case numbers and ids without bound).
func (m *Metrics) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		// ServeMux records the matched pattern on the request it was given (Go 1.23).
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.httpDuration.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.code, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines of the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// OutboxCounter reports how many queued mails stand in each outbox status.
type OutboxCounter interface {
	OutboxCounts(ctx context.Context) (map[string]int64, error)
}

// WatchOutbox adds gauges of pending and failed outbox mails, read from the database
// at each scrape so that every instance reports the shared queue the same way.
func (m *Metrics) WatchOutbox(src OutboxCounter, log *slog.Logger) {
	m.reg.MustRegister(&outboxCollector{src: src, log: log, desc: prometheus.NewDesc(
		"casebook_outbox_mails", "Mails in the outbox by status (pending: still to send; failed: given up).",
		[]string{"status"}, nil)})
}

type outboxCollector struct {
	src  OutboxCounter
	log  *slog.Logger
	desc *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	// Collect has no context; a scrape must still not hang on a stuck database.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.src.OutboxCounts(ctx)
	if err != nil {
		c.log.Warn("cannot count the outbox for metrics", slog.Any("error", err))
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, st := range []string{"pending", "failed"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}
