package main

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkCluster is TestCluster at full size: 1,000 replies through one instance
// (the baseline), through three, and through three whose mailbox holder is killed
// with SIGKILL five times from half way on. It reports ingest throughput, the
// takeover time (p50 and worst), and how long after each death the last owner
// notification queued before it went out.
//
//	go test ./cmd/casebook -run '^$' -bench BenchmarkCluster -benchtime 1x
func BenchmarkCluster(b *testing.B) {
	const replies = 1000
	for _, bc := range []struct{ instances, kills int }{{1, 0}, {3, 0}, {3, 5}} {
		b.Run(fmt.Sprintf("instances=%d/kills=%d", bc.instances, bc.kills), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				c := newCluster(b, bc.instances)
				b.StartTimer()
				start := time.Now()
				takeovers, killedAt := c.runIngest(replies, bc.kills)
				elapsed := time.Since(start)
				b.StopTimer()
				c.checkOutbox(replies, bc.kills)
				c.verifyBlobs()
				b.ReportMetric(float64(replies)/elapsed.Seconds(), "msg/s")
				if bc.kills == 0 {
					b.StartTimer()
					continue
				}
				var late []time.Duration
				for _, k := range killedAt {
					late = append(late, c.lateAfterKill(k))
				}
				b.ReportMetric(median(takeovers).Seconds(), "takeover-p50-s")
				b.ReportMetric(slices.Max(takeovers).Seconds(), "takeover-max-s")
				b.ReportMetric(slices.Max(late).Seconds(), "outbox-after-death-max-s")
				b.Logf("takeovers %v; last pre-kill notification sent after %v", takeovers, late)
				b.StartTimer()
			}
		})
	}
}
