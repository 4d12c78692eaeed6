package outbox

import (
	"log/slog"
	"strconv"
	"sync"
	"testing"
)

// BenchmarkSend measures outbox rows sent per second to a local SMTP server: claim,
// compose (templates, MIME), SMTP over loopback, and the mark, with one worker and
// with two working the same table.
//
//	go test -run '^$' -bench Send -benchtime 2000x ./casebook/outbox/
func BenchmarkSend(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(strconv.Itoa(workers)+"_workers", func(b *testing.B) {
			f := newFixture(b)
			if _, err := f.st.DB().ExecContext(b.Context(), `INSERT INTO outbox (kind, case_id, user_id, recipient, message_id, data)
				SELECT 'owner_notification', $1, $2, 'sam@support.example', '<bench-' || g || '@casebook.test>',
				'{"case": "CASE-000001", "subject": "Lab results", "source": "email", "author": "Alice <alice@acme.example>",
				  "files": [{"filename": "scan.pdf", "size": 123456, "content_type": "application/pdf"}]}'
				FROM generate_series(1, $3) g`, f.c.ID, f.owner.ID, b.N); err != nil {
				b.Fatal(err)
			}
			ws := make([]*Worker, workers)
			for i := range ws {
				ws[i] = f.worker(b, nil, func(o *Options) { o.PerHour = -1; o.Logger = slog.New(slog.DiscardHandler) })
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, w := range ws {
				wg.Go(func() {
					for {
						n, err := w.sendDue(b.Context())
						if err != nil {
							b.Error(err)
							return
						}
						if n == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if got := len(f.srv.Messages()); got != b.N {
				b.Fatalf("%d mails delivered, want %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
