package imap_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"

	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
)

// benchMessages is the size of the throughput benchmark's mailbox: replies with a
// 100 KB attachment each.
const benchMessages = 1000

// benchCases is over how many cases of one org the benchmark's replies are spread: a
// helpdesk's mail goes to many cases, and replies to one case are serialised by its
// row lock.
const benchCases = 20

// BenchmarkThroughput ingests a mailbox of 1,000 replies with a 100 KB attachment
// into PostgreSQL, next to two baselines measured in the same run on the same
// mailbox by one go-imap client: a bare UID FETCH BODY.PEEK[] and a fetch that
// also parses each message with go-message and hashes every part. Run it once:
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./ingest/imap
func BenchmarkThroughput(b *testing.B) {
	s := startDovecot(b)
	e := newEnv(b)
	c := s.Dial("alice")
	if err := c.Create("Bench", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	for i := range benchMessages {
		dovecottest.Append(b, c, "Bench", e.replyTo(i, fmt.Sprint("bench", i), 100<<10))
	}
	var bare, parsed, ingested, processed time.Duration
	var parseCPU, ingestCPU, parseMachine, ingestMachine time.Duration
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			// The last run filed the mail: put it back, and start on a fresh database.
			b.StopTimer()
			refill(b, c, "Casebook/Processed", "Bench")
			e = newEnv(b)
			b.StartTimer()
		}
		bare += timeFetch(b, s, false)
		cpu0, m0 := cpuTime(b), machineCPU(b)
		parsed += timeFetch(b, s, true)
		cpu1, m1 := cpuTime(b), machineCPU(b)
		ingested += timeIngest(b, e, s)
		parseCPU += cpu1 - cpu0
		ingestCPU += cpuTime(b) - cpu1
		parseMachine += m1 - m0
		ingestMachine += machineCPU(b) - m1
		b.StopTimer()
		processed += timeProcessor(b)
		b.StartTimer()
	}
	n := float64(b.N * benchMessages)
	b.ReportMetric(n/bare.Seconds(), "fetch_msg/s")
	b.ReportMetric(n/parsed.Seconds(), "fetch+parse+hash_msg/s")
	b.ReportMetric(n/ingested.Seconds(), "ingest_msg/s")
	b.ReportMetric(parsed.Seconds()/ingested.Seconds(), "ingest/parse_ratio")
	// CPU time of this process (the poller and the processor; PostgreSQL and Dovecot
	// are other processes) per 1,000 mails, next to the ceiling's.
	b.ReportMetric(ingestCPU.Seconds()*1000/n, "ingest_cpu_s/1000msg")
	b.ReportMetric(parseCPU.Seconds()*1000/n, "fetch+parse+hash_cpu_s/1000msg")
	// The whole machine's busy CPU in each phase (Dovecot, PostgreSQL and the kernel
	// too), per 1,000 mails: what a rate is bought with, and on a machine with few
	// cores, what bounds it.
	b.ReportMetric(ingestMachine.Seconds()*1000/n, "ingest_machine_cpu_s/1000msg")
	b.ReportMetric(parseMachine.Seconds()*1000/n, "fetch+parse+hash_machine_cpu_s/1000msg")
	// The processor alone, on the same messages from local files with as many
	// workers and a fresh database: the ceiling the IMAP layer can reach.
	b.ReportMetric(n/processed.Seconds(), "processor_only_msg/s")
	b.ReportMetric(processed.Seconds()/ingested.Seconds(), "ingest/processor_ratio")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the user and system CPU time this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the busy CPU time of the whole machine so far, from /proc/stat: user,
// nice, system, irq and softirq of every CPU. Elsewhere than Linux it is zero.
func machineCPU(b *testing.B) time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	var user, nice, system, idle, iowait, irq, softirq int64
	if _, err := fmt.Fscanf(f, "cpu %d %d %d %d %d %d %d", &user, &nice, &system, &idle, &iowait, &irq, &softirq); err != nil {
		b.Fatalf("/proc/stat: %v", err)
	}
	// The kernel counts in USER_HZ, 100 a second on every Linux platform Go runs on.
	return time.Duration(user+nice+system+irq+softirq) * (time.Second / 100)
}

// timeFetch fetches the whole Bench mailbox on a new connection, discarding each
// message or parsing it and hashing every part.
func timeFetch(b *testing.B, s *dovecot, parse bool) time.Duration {
	c := s.Dial("alice")
	defer c.Close()
	if _, err := c.Select("Bench", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	n := 0
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok {
				continue
			}
			if !parse {
				io.Copy(io.Discard, body.Literal)
			} else if err := hashParts(body.Literal); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	if n != benchMessages {
		b.Fatalf("fetched %d messages, want %d", n, benchMessages)
	}
	return time.Since(start)
}

func hashParts(r io.Reader) error {
	mr, err := mail.CreateReader(r)
	if err != nil {
		return err
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, p.Body); err != nil {
			return err
		}
	}
}

// timeIngest runs a poller on the Bench mailbox until every message is committed.
// It returns the time a steady poller takes for the whole mailbox: the time from the
// first commit to the last, scaled to all the messages. The poller's start (taking
// the mailbox lock, waiting out the lock's fence of a second, logging in) is paid once
// per instance, not per message, and is left out.
func timeIngest(b *testing.B, e *env, s *dovecot) time.Duration {
	proc := &signalling{Processor: e.proc, done: make(chan time.Time, benchMessages)}
	stop := e.poller(b, s.url("Bench"), proc)
	defer stop()
	var first, last time.Time
	for i := range benchMessages {
		select {
		case last = <-proc.done:
			if i == 0 {
				first = last
			}
		case <-time.After(time.Minute):
			b.Fatalf("ingested %d of %d messages", proc.n.Load(), benchMessages)
		}
	}
	var u, f int
	if err := e.st.DB().Get(&u, `SELECT count(*) FROM updates`); err != nil {
		b.Fatal(err)
	}
	if err := e.st.DB().Get(&f, `SELECT count(*) FROM attachments`); err != nil {
		b.Fatal(err)
	}
	if u != benchMessages || f != benchMessages {
		b.Fatalf("updates, files = %d, %d; want %d each", u, f, benchMessages)
	}
	return last.Sub(first) * benchMessages / (benchMessages - 1)
}

// timeProcessor runs the same messages through a fresh env's processor straight
// from files, with the poller's default number of workers.
func timeProcessor(b *testing.B) time.Duration {
	e := newEnv(b)
	dir := b.TempDir()
	var files []string
	for i := range benchMessages {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, e.replyTo(i, fmt.Sprint("bench", i), 100<<10), 0o600); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
	}
	type job struct {
		path string
		uid  uint32
	}
	work := make(chan job)
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for j := range work {
				f, err := os.Open(j.path)
				if err != nil {
					b.Error(err)
					continue
				}
				// A mailbox position, committed with each update as the poller's are.
				loc := ingest.Location{Mailbox: "files", UIDValidity: 1, UID: j.uid}
				if _, err := e.proc.Process(context.Background(), loc, f); err != nil {
					b.Error(err)
				}
				f.Close()
			}
		})
	}
	for i, p := range files {
		work <- job{p, uint32(i + 1)}
	}
	close(work)
	wg.Wait()
	return time.Since(start)
}

// refill moves every message of from back to to.
func refill(b *testing.B, c *imapclient.Client, from, to string) {
	waitCount := func() {
		for range 600 {
			st, err := c.Status(from, &imap.StatusOptions{NumMessages: true}).Wait()
			if err != nil {
				b.Fatal(err)
			}
			if *st.NumMessages == benchMessages {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.Fatalf("%s never held %d messages", from, benchMessages)
	}
	waitCount()
	if _, err := c.Select(from, nil).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, to).Wait(); err != nil {
		b.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		b.Fatal(err)
	}
}

// signalling reports the time of every successful commit.
type signalling struct {
	ingest.Processor
	n    atomic.Int64
	done chan time.Time
}

func (p *signalling) Process(ctx context.Context, loc ingest.Location, raw io.ReadSeeker) (ingest.Result, error) {
	res, err := p.Processor.Process(ctx, loc, raw)
	if err == nil {
		p.n.Add(1)
		p.done <- time.Now()
	}
	return res, err
}

// BenchmarkIdleLatency appends 200 replies one at a time to the mailbox the poller
// watches, and each time the same to a second mailbox watched by a bare IDLE client
// (the poller moves its mail away within milliseconds, and Dovecot tells nobody of a
// message already gone). It reports APPEND → update committed next to APPEND → EXISTS
// (Dovecot's own notification time), p50 and p99:
//
//	go test -run '^$' -bench IdleLatency -benchtime 1x ./ingest/imap
func BenchmarkIdleLatency(b *testing.B) {
	const messages = 200
	s := startDovecot(b)
	e := newEnv(b)
	s.CreateMailbox("alice", "Watch")
	var bare, commit []time.Duration
	for b.Loop() {
		proc := &signalling{Processor: e.proc, done: make(chan time.Time, messages)}
		stop := e.poller(b, s.url("INBOX"), proc)
		// Wait for the poller to be idle on an empty mailbox with its folders made.
		eventually(b, "poller ready", func() (bool, string) {
			return folderExists(b, s, "Casebook/Processed"), "no folders"
		})

		exists := make(chan time.Time, 16)
		watcher, err := imapclient.DialInsecure(s.Addr(), &imapclient.Options{
			UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						select {
						case exists <- time.Now():
						default:
						}
					}
				},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := watcher.Login("alice", "pw").Wait(); err != nil {
			b.Fatal(err)
		}
		if _, err := watcher.Select("Watch", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		idle, err := watcher.Idle()
		if err != nil {
			b.Fatal(err)
		}
		appender := s.Dial("alice")
		for i := range messages {
			raw := e.reply(fmt.Sprintf("lat%d-%d", len(bare), i), 0)
			t0w := time.Now()
			dovecottest.Append(b, appender, "Watch", raw)
			t0 := time.Now()
			dovecottest.Append(b, appender, "INBOX", raw)
			var t1, t2 time.Time
			for t1.IsZero() || t2.IsZero() {
				select {
				case t1 = <-exists:
				case t2 = <-proc.done:
				case <-time.After(time.Minute):
					b.Fatalf("message %d: notice at %v, commit at %v, then nothing for a minute", i, t1, t2)
				}
			}
			bare = append(bare, t1.Sub(t0w))
			commit = append(commit, t2.Sub(t0))
		}
		idle.Close()
		idle.Wait()
		watcher.Close()
		appender.Close()
		stop()
	}
	pct := func(d []time.Duration, p float64) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(bare, 0.5), "exists_p50_ms")
	b.ReportMetric(pct(bare, 0.99), "exists_p99_ms")
	b.ReportMetric(pct(commit, 0.5), "commit_p50_ms")
	b.ReportMetric(pct(commit, 0.99), "commit_p99_ms")
	b.ReportMetric(pct(commit, 0.5)-pct(bare, 0.5), "added_p50_ms")
	b.ReportMetric(pct(commit, 0.99)-pct(bare, 0.99), "added_p99_ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLargeAttachment ingests one reply with a 25 MiB attachment through IMAP and
// reports the peak growth of the live heap while it is fetched, spooled, parsed,
// stored and committed (aim: at most 32 MiB):
//
//	go test -run '^$' -bench LargeAttachment -benchtime 1x ./ingest/imap
func BenchmarkLargeAttachment(b *testing.B) {
	s := startDovecot(b)
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b)
		s.append(b, "INBOX", e.reply("large", 25<<20))
		proc := &signalling{Processor: e.proc, done: make(chan time.Time, 1)}
		runtime.GC()
		base := heapLive()
		stopSampling := make(chan struct{})
		sampled := make(chan uint64)
		go func() {
			var max uint64
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopSampling:
					sampled <- max
					return
				case <-t.C:
					if h := heapLive(); h > base && h-base > max {
						max = h - base
					}
				}
			}
		}()
		b.StartTimer()
		stop := e.poller(b, s.url("INBOX"), proc)
		select {
		case <-proc.done:
		case <-time.After(2 * time.Minute):
			b.Fatal("the large reply was not committed")
		}
		b.StopTimer()
		close(stopSampling)
		peak = max(peak, <-sampled)
		stop()
		if _, f := e.updates(b); f != 1 {
			b.Fatalf("files = %d, want 1", f)
		}
		// File it back for the next round.
		refillOne(b, s)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_growth_MiB")
	b.ReportMetric(0, "ns/op")
}

// heapLive is the heap held by live and not yet swept objects.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// refillOne empties the filing folder so that the next round starts alike.
func refillOne(b *testing.B, s *dovecot) {
	c := s.Dial("alice")
	defer c.Close()
	if _, err := c.Select("Casebook/Processed", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, store, nil).Close(); err != nil {
		b.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		b.Fatal(err)
	}
}
