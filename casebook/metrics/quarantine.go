package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QuarantineCounter reports how much quarantined mail waits for a person.
type QuarantineCounter interface {
	PendingQuarantine(ctx context.Context) (int64, error)
}

// WatchQuarantine adds the casebook_quarantine_pending gauge, read from the database
// at each scrape so that every instance reports the shared queue the same way.
func (m *Metrics) WatchQuarantine(src QuarantineCounter, log *slog.Logger) {
	m.reg.MustRegister(&quarantineCollector{src: src, log: log, desc: prometheus.NewDesc(
		"casebook_quarantine_pending", "Quarantined mail waiting for staff to release or drop it.", nil, nil)})
}

type quarantineCollector struct {
	src  QuarantineCounter
	log  *slog.Logger
	desc *prometheus.Desc
}

func (c *quarantineCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *quarantineCollector) Collect(ch chan<- prometheus.Metric) {
	// Collect has no context; a scrape must still not hang on a stuck database.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.src.PendingQuarantine(ctx)
	if err != nil {
		c.log.Warn("cannot count the quarantine for metrics", slog.Any("error", err))
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
