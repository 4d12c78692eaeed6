package blob

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook/blob/s3test"
)

// BenchmarkPut25MiB stores 25 MiB files (each distinct, so each is written) in a
// directory and on a real S3 server, and reports the heap's growth while it does:
// peak-heap-MiB is the most the live heap grew over its level before the Put.
func BenchmarkPut25MiB(b *testing.B) {
	srv := s3test.Start(b)
	for _, c := range []struct {
		name string
		open func(b *testing.B, key *Key) *Store
	}{
		{"dir", func(b *testing.B, key *Key) *Store { return must(Open(b.TempDir(), key)) }},
		{"s3", func(b *testing.B, key *Key) *Store { return newS3(b, srv, b.Name(), key) }},
	} {
		for _, enc := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/encrypted=%v", c.name, enc), func(b *testing.B) {
				var key *Key
				if enc {
					key = NewKey()
				}
				st := c.open(b, key)
				var peak float64
				b.SetBytes(25 << 20)
				for i := 0; b.Loop(); i++ {
					grew := heapGrowth(func() {
						if _, err := st.Put(context.Background(), &counted{n: 25 << 20, seed: byte(i)}, 1<<30); err != nil {
							b.Fatal(err)
						}
					})
					peak = max(peak, grew)
				}
				b.ReportMetric(peak/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// heapGrowth runs fn and returns the most the live heap grew over its level before,
// sampled every millisecond.
func heapGrowth(fn func()) float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() float64 { metrics.Read(sample); return float64(sample[0].Value.Uint64()) }
	base := read()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := uint64(read()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return max(0, float64(peak.Load())-base)
}

// counted yields n bytes of a pattern that differs with seed.
type counted struct {
	n    int
	seed byte
}

func (c *counted) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n)
	for i := range p[:k] {
		p[i] = byte(c.n-i) ^ c.seed
	}
	c.n -= k
	return k, nil
}
