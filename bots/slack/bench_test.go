package slack_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/casebookhq/casebook/bots/slack/slacktest"
	"github.com/casebookhq/casebook/casebook"
)

// BenchmarkFileShare pushes 1,000 file_share events with 100 KB files through the fake
// Slack over Socket Mode: download, blob store (fsync), commit, thread reply and
// reaction. It then downloads the same files raw from the fake with the same client and
// as many at once as the adapter's workers, and reports both rates and their ratio.
// Run it with -benchtime=1x: one iteration is the 1,000 events.
func BenchmarkFileShare(b *testing.B) {
	const (
		events   = 1000
		size     = 100 << 10
		channels = 8
	)
	e := newEnv(b, options{workers: channels})
	ctx := b.Context()
	for i := range channels {
		if err := e.st.Bind(ctx, casebook.Binding{Platform: casebook.SourceSlack, Workspace: slacktest.TeamID, Channel: benchChannel(i), OrgID: e.c.OrgID}); err != nil {
			b.Fatal(err)
		}
	}
	var eventTotal, rawTotal time.Duration
	for n := 0; b.Loop(); n++ {
		files := make([]goslack.File, events)
		for i := range files {
			f := pdf(fmt.Sprintf("FB%d-%d", n, i), fmt.Sprintf("scan-%d.pdf", i), size)
			copy(f.Content, f.ID+" ")
			files[i] = e.fake.AddFile(f)
		}
		posted := len(e.fake.Posts())

		start := time.Now()
		for i, f := range files {
			e.fake.SendEvent(fmt.Sprintf("EvB%d-%d", n, i), slacktest.MessageEvent{Type: "message", SubType: "file_share", Channel: benchChannel(i % channels),
				User: customer, Text: "for CASE-000001", TS: fmt.Sprintf("%d.%06d", 1700000000+n, i), Files: []goslack.File{f}})
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		err := e.fake.Wait(wctx, func(s *slacktest.Server) bool { return len(s.Posts()) >= posted+events })
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		eventTotal += time.Since(start)

		api := goslack.New(slacktest.BotToken, goslack.OptionAPIURL(e.fake.APIURL()))
		start = time.Now()
		var wg sync.WaitGroup
		next := make(chan goslack.File)
		for range channels {
			wg.Go(func() {
				for f := range next {
					if err := api.GetFileContext(ctx, f.URLPrivateDownload, io.Discard); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, f := range files {
			next <- f
		}
		close(next)
		wg.Wait()
		rawTotal += time.Since(start)
	}
	if got := len(e.attachments(b, e.c)); got != b.N*events {
		b.Fatalf("%d files attached, want %d", got, b.N*events)
	}
	evRate := float64(b.N*events) / eventTotal.Seconds()
	rawRate := float64(b.N*events) / rawTotal.Seconds()
	b.ReportMetric(evRate, "events/s")
	b.ReportMetric(rawRate, "raw_downloads/s")
	b.ReportMetric(evRate/rawRate, "ratio")
}

func benchChannel(i int) string { return fmt.Sprintf("C0BENCH%d", i) }
