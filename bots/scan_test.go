package bots_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
)

// TestScannedFiles checks the ❌ answers, shared by Slack and Discord, to an infected
// file and to a scanner that cannot answer, against a real clamd.
func TestScannedFiles(t *testing.T) {
	srv := clamdtest.Start(t)
	down := clamdtest.Unreachable(t)
	tests := []struct {
		name  string
		clamd string
		body  []byte
		want  bots.Reply
	}{
		{"clean", srv.Addr, []byte("%PDF-1.4\nresults\n"), bots.Reply{Kind: bots.ReplyAttached, Thread: "800.1", Case: 1, Attached: 1,
			Text: "Attached `report.pdf` (17 bytes) to CASE-000001 — Scanner &lt;fails&gt; &amp; Acme Clinic"}},
		{"EICAR", srv.Addr, []byte(clamdtest.EICAR), bots.Reply{Kind: bots.ReplyRefused, Thread: "800.1", Case: 1, Refused: 1,
			Text: "`report.pdf` was not attached: our malware scan found something harmful in it. Check the file with your IT team before sending it again."}},
		{"clamd down", down, []byte("%PDF-1.4\nresults\n"), bots.Reply{Kind: bots.ReplyRefused, Thread: "800.1", Case: 1, Refused: 1,
			Text: "`report.pdf` could not be checked for malware right now, so it was not attached: please try again in a few minutes."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := clamav.Parse(tt.clamd)
			if err != nil {
				t.Fatal(err)
			}
			e := newScanningEnv(t, c)
			f := e.file("F1", "report.pdf", 0)
			e.content["F1"], f.Size = tt.body, int64(len(tt.body))
			got := e.bot.HandleMessage(t.Context(), msg("800.1", "", "CASE-1", f))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			if n := len(e.attachments(t, e.c)); n != tt.want.Attached {
				t.Errorf("%d attachments, want %d", n, tt.want.Attached)
			}
		})
	}
}
