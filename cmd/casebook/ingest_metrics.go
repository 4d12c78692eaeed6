package main

import (
	"context"
	"io"
	"strings"

	"casebook/casebook/metrics"
	"casebook/ingest"
)

// countingProcessor counts each message the poller fetched and hands over, and each
// quarantine by a short reason word.
type countingProcessor struct {
	next ingest.Processor
	m    *metrics.Metrics
}

var _ ingest.Processor = countingProcessor{}

func (p countingProcessor) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	p.m.MessageFetched(loc.Mailbox)
	r, err := p.next.Process(ctx, loc, raw)
	if err == nil && r.Disposition == ingest.Quarantined {
		p.m.Quarantined(quarantineReason(r.Reason))
	}
	return r, err
}

// quarantineReasons map the mail processor's sentences for a person to metric
// labels, which must come from a fixed set. Anything unforeseen counts as "other".
var quarantineReasons = []struct{ phrase, label string }{
	{"account is disabled", "user_disabled"},
	{"no case found", "no_case_ref"},
	{"more than one case", "ambiguous_case"},
	{"does not exist", "case_not_found"},
	{"not a registered contact", "not_allowed"},
	{"not a contact", "not_allowed"},
	{"is closed", "case_closed"},
	{"larger than the limit", "too_large"},
	{"too many files", "too_many_files"},
	{"over a limit", "over_limit"},
	{"malformed", "malformed"},
}

func quarantineReason(reason string) string {
	r := strings.ToLower(reason)
	// The malware reason names the file, which could hold any phrase below.
	if strings.HasPrefix(reason, ingest.ReasonMalware+":") {
		return "malware"
	}
	for _, q := range quarantineReasons {
		if strings.Contains(r, q.phrase) {
			return q.label
		}
	}
	return "other"
}
