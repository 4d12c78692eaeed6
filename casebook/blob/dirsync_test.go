package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Writers that queue while a round runs share the next one: one fsync per directory,
// however many renames into it wait, and each waiter gets its own directory's result.
func TestDirSyncsShareRounds(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	hold := make(chan struct{})
	entered := make(chan struct{}, 1)
	broken := errors.New("fsync failed")
	s := &dirSyncs{fsync: func(dir string) error {
		mu.Lock()
		calls[dir]++
		first := calls["first"] == 1 && dir == "first"
		mu.Unlock()
		if first {
			entered <- struct{}{}
			<-hold
		}
		if dir == "broken" {
			return broken
		}
		return nil
	}}
	tests := []struct {
		dir     string
		writers int
		want    error
	}{
		{"a", 10, nil},
		{"b", 5, nil},
		{"broken", 3, broken},
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.sync("first"); err != nil {
			t.Errorf("first: %v", err)
		}
	})
	<-entered // the first round is running and held
	errs := make(chan error, 32)
	for _, tt := range tests {
		for range tt.writers {
			wg.Go(func() {
				if err := s.sync(tt.dir); !errors.Is(err, tt.want) {
					errs <- err
				}
			})
		}
	}
	// Give the writers time to queue behind the held round.
	time.Sleep(100 * time.Millisecond)
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a writer got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tt := range tests {
		if calls[tt.dir] != 1 {
			t.Errorf("%s fsynced %d times for %d writers, want 1", tt.dir, calls[tt.dir], tt.writers)
		}
	}
	// The last round hands out its results before it stands down.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		idle := !s.running && len(s.queued) == 0
		s.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rounds never stood down")
		}
	}
}

// A writer that queues while a round is fsyncing its directory waits for the next
// round: the running one may have started before its rename.
func TestDirSyncsWaitForALaterRound(t *testing.T) {
	hold := make(chan struct{})
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	n := 0
	s := &dirSyncs{fsync: func(dir string) error {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			entered <- struct{}{}
			<-hold
		}
		return nil
	}}
	var wg sync.WaitGroup
	wg.Go(func() { s.sync("d") })
	<-entered
	second := make(chan struct{})
	wg.Go(func() { s.sync("d"); close(second) })
	select {
	case <-second:
		t.Fatal("the second writer returned while the round that started before it ran")
	case <-time.After(50 * time.Millisecond):
	}
	close(hold)
	wg.Wait()
	if n != 2 {
		t.Errorf("%d fsyncs, want 2", n)
	}
}

// The directories of one round are fsynced at once: neither of two directories queued
// together waits for the other's fsync to finish.
func TestDirSyncsRoundIsConcurrent(t *testing.T) {
	hold := make(chan struct{})
	entered := make(chan struct{}, 1)
	both := &sync.WaitGroup{}
	both.Add(2)
	s := &dirSyncs{fsync: func(dir string) error {
		switch dir {
		case "first":
			entered <- struct{}{}
			<-hold
			return nil
		}
		// Each of x and y returns only once the other has started.
		both.Done()
		met := make(chan struct{})
		go func() { both.Wait(); close(met) }()
		select {
		case <-met:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("fsynced alone: the other directory waited for this one")
		}
	}}
	var wg sync.WaitGroup
	wg.Go(func() { s.sync("first") })
	<-entered
	errs := make(chan error, 2)
	for _, dir := range []string{"x", "y"} {
		wg.Go(func() { errs <- s.sync(dir) })
	}
	// Let both queue behind the held round, so that they share the next one.
	time.Sleep(100 * time.Millisecond)
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// A Put that makes a fan-out directory makes the directory's own name durable too:
// the root is fsynced as well as the new directory. A Put into a directory that
// exists, or of content stored already, does not sync the root.
func TestPlaceSyncsANewDirectoryInTheRoot(t *testing.T) {
	root := t.TempDir()
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var synced []string
	d.dirs.fsync = func(dir string) error {
		mu.Lock()
		synced = append(synced, dir)
		mu.Unlock()
		return syncDir(dir)
	}
	s, err := New(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	fanOut := func(content string) string {
		sum := sha256.Sum256([]byte(content))
		return filepath.Join(root, hex.EncodeToString(sum[:1]))
	}
	// Content whose fan-out directory exists before its Put.
	var other string
	for i := 0; ; i++ {
		other = fmt.Sprint("other content ", i)
		if fanOut(other) != fanOut("first content") {
			break
		}
	}
	if err := os.Mkdir(fanOut(other), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		content string
		want    []string
	}{
		{"first content", []string{root, fanOut("first content")}},
		{"first content", nil},
		{other, []string{fanOut(other)}},
	}
	for _, tt := range tests {
		synced = nil
		if _, err := s.Put(context.Background(), strings.NewReader(tt.content), 1<<20); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(synced, tt.want) {
			t.Errorf("Put(%q) synced %q, want %q", tt.content, synced, tt.want)
		}
	}
}
