package doctor_test

import (
	"context"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
	"github.com/casebookhq/casebook/casebook/doctor"
)

// fixedVersion is a clamd that answers VERSION with a given line, for the database
// dates a test clamd without official signatures cannot report.
type fixedVersion struct {
	doctor.ClamdProbe
	answer string
}

func (f fixedVersion) Version(context.Context) (string, error) { return f.answer, nil }

func TestClamd(t *testing.T) {
	srv := clamdtest.Start(t)
	real, err := clamav.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	down, err := clamav.Parse("tcp://" + closedAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.Local)
	tests := []struct {
		name   string
		probe  doctor.ClamdProbe
		status doctor.Status
		detail string
	}{
		{"fresh signatures", fixedVersion{real, "ClamAV 1.4.6/27474/Sat Nov 28 09:32:11 2026"}, doctor.OK,
			"clamd 1.4.6 at " + srv.Addr + " answers; signatures 27474 of 28 Nov 2026 09:32 (1 day old)"},
		{"stale signatures", fixedVersion{real, "ClamAV 1.4.6/27400/Mon Nov  9 09:32:11 2026"}, doctor.Warn,
			"(20 days old): older than 7 days, is freshclam running?"},
		{"only local signatures", real, doctor.Warn, "names no signature database"},
		{"down", down, doctor.Fail, "no answer from clamd at tcp://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, doctor.Clamd(tt.probe, now, doctor.ClamdMaxAge), tt.status, tt.detail)
		})
	}
	t.Run("not configured", func(t *testing.T) {
		expect(t, doctor.ClamdOff(), doctor.Warn, "files are stored without a malware scan")
	})
}
