package ingest_test

import (
	"runtime"
	"sync"
	"time"
)

// measureHeap runs fn and returns the largest heap growth seen by sampling
// runtime.ReadMemStats while it ran, and the bytes allocated meanwhile (an upper
// bound of the peak growth that sampling cannot miss).
func measureHeap(fn func()) (peakGrowth, allocated uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := before.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapAlloc)
			mu.Unlock()
		}
	})
	fn()
	close(done)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	peak = max(peak, after.HeapAlloc)
	return peak - before.HeapAlloc, after.TotalAlloc - before.TotalAlloc
}
