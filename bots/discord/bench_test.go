package discord

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/casebookhq/casebook/bots/discord/discordtest"
)

// BenchmarkAttachments pushes 1,000 messages, each with one 16 kB file naming the
// case, through the fake Discord into PostgreSQL and the blob store, and compares
// the rate with a raw download of the same files at the same concurrency.
//
//	go test -race=false -run '^$' -bench Attachments -benchtime 1x ./bots/discord/
func BenchmarkAttachments(b *testing.B) {
	const (
		messages = 1000
		size     = 16 << 10
		workers  = 4
	)
	channels := []string{"300000000000000011", "300000000000000012", "300000000000000013", "300000000000000014"}
	e := newEnvWith(b, envOptions{workers: workers, logger: slog.New(slog.DiscardHandler), channels: channels})
	base, err := url.Parse(e.fake.URL)
	if err != nil {
		b.Fatal(err)
	}
	pool := http.DefaultTransport.(*http.Transport).Clone()
	pool.MaxIdleConnsPerHost = 2 * workers
	raw := &http.Client{Transport: redirect{base: base, next: pool}}
	ref := e.refs.Format(e.acme.Number)
	var botTime, rawTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		atts := make([]*discordgo.MessageAttachment, messages)
		for j := range atts {
			atts[j] = e.fake.AddFile(channels[j%len(channels)], "bench-"+strconv.Itoa(i)+"-"+strconv.Itoa(j)+".bin", "application/octet-stream", randomBytes(size))
		}
		b.StartTimer()

		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan *discordgo.MessageAttachment)
		for range workers {
			wg.Go(func() {
				for a := range next {
					if err := fetch(b.Context(), raw, a.URL); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, a := range atts {
			next <- a
		}
		close(next)
		wg.Wait()
		rawTime += time.Since(start)

		start = time.Now()
		for j, a := range atts {
			e.fake.PostMessage(discordtest.Message{GuildID: guild, ChannelID: channels[j%len(channels)], AuthorID: userID, Content: ref, Attachments: []*discordgo.MessageAttachment{a}})
		}
		e.fake.Wait("every reply", func() bool { return len(e.fake.Sent()) >= (i+1)*messages })
		botTime += time.Since(start)
	}
	b.StopTimer()
	for _, r := range e.fake.Sent() {
		if !strings.HasPrefix(r.Content, "Attached") {
			b.Fatalf("reply %q, want every file attached", r.Content)
		}
	}
	n := float64(b.N * messages)
	botRate, rawRate := n/botTime.Seconds(), n/rawTime.Seconds()
	b.ReportMetric(botRate, "msgs/s")
	b.ReportMetric(rawRate, "raw_downloads/s")
	b.ReportMetric(botRate/rawRate, "ratio")
}

func fetch(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
