package main

import (
	"context"
	"io"

	"github.com/casebookhq/casebook/casebook/metrics"
	"github.com/casebookhq/casebook/ingest"
)

// countingProcessor counts each message the poller fetched and hands over, and each
// quarantine by its reason code.
type countingProcessor struct {
	next ingest.Processor
	m    *metrics.Metrics
}

var _ ingest.Processor = countingProcessor{}

func (p countingProcessor) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	p.m.MessageFetched(loc.Mailbox)
	r, err := p.next.Process(ctx, loc, raw)
	if err == nil && r.Disposition == ingest.Quarantined {
		p.m.Quarantined(string(r.Code))
	}
	return r, err
}
