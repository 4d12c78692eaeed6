package casebook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultBlobGrace is how long an unnamed blob is kept before the sweep removes it:
// far longer than any update takes from storing its files to its commit, so a blob
// an update is about to name is never taken (see SweepBlobs).
const DefaultBlobGrace = 24 * time.Hour

// BlobInfo describes a stored blob. ModTime is when it was written or last stored
// again by Put.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// BlobSweeper is what the sweep needs from the blob store (casebook/blob.Store).
type BlobSweeper interface {
	Walk(ctx context.Context, fn func(BlobInfo) error) error
	// RemoveUnused removes a blob unless it was stored again at or after cutoff.
	RemoveUnused(ctx context.Context, key string, cutoff time.Time) (bool, error)
	// Recover finishes removals a crash interrupted.
	Recover(ctx context.Context, cutoff time.Time) error
}

// BlobRefStore tells which blobs rows name (casebook/postgres.Store).
type BlobRefStore interface {
	// BlobsNamed returns the subset of keys some row names.
	BlobsNamed(ctx context.Context, keys []string) (map[string]bool, error)
	// WithLock runs fn holding the lock called name, which one instance of several
	// holds at a time; ok is false, and fn not run, when another holds it. fn's
	// context ends when the lock may have been lost (checked every interval).
	WithLock(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) (ok bool, err error)
}

// BlobSweepLock names the lock all instances sweep under, so that one sweeps.
const BlobSweepLock = "casebook/blob-sweep"

// SweepOptions tunes SweepBlobs.
type SweepOptions struct {
	// Grace is how long a blob no row names is kept; DefaultBlobGrace when zero.
	Grace time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// SweepReport says what a sweep found and did.
type SweepReport struct {
	// Skipped is set when another instance was sweeping: nothing was done.
	Skipped bool `json:"skipped"`
	DryRun  bool `json:"dry_run"`
	// Blobs is how many blobs the store holds; Young how many of those are within the
	// grace period (kept whether named or not).
	Blobs int `json:"blobs"`
	Young int `json:"young"`
	// Unnamed blobs are older than the grace period and named by no row: removed, or
	// to be removed under DryRun.
	Unnamed      int   `json:"unnamed"`
	UnnamedBytes int64 `json:"unnamed_bytes"`
	Removed      int   `json:"removed"`
	// Keys names the unnamed blobs, the first maxReportKeys of them.
	Keys []string `json:"keys,omitempty"`
}

// maxReportKeys caps the keys a SweepReport lists.
const maxReportKeys = 1000

// sweepBatch is how many blob keys go to the database in one question.
const sweepBatch = 1000

// SweepBlobs removes blobs that no row names and that are older than the grace
// period, under an advisory lock so that one instance sweeps at a time. This is the
// only way a blob is ever deleted: the write path never deletes (a blob is shared by
// every update whose file has the same content, and one whose commit fails cannot
// know whether another has committed meanwhile).
//
// Why the grace period makes it safe: a row can come to name a blob only through a
// Put, which either writes the blob or, finding it, sets its time to now. So a blob
// older than the grace period that no row names now can be named later only by an
// update that has stored it again since the check, and the store's RemoveUnused
// rereads the time after taking the blob away and puts it back then.
func SweepBlobs(ctx context.Context, refs BlobRefStore, blobs BlobSweeper, opt SweepOptions) (SweepReport, error) {
	if opt.Grace <= 0 {
		opt.Grace = DefaultBlobGrace
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	rep := SweepReport{DryRun: opt.DryRun}
	ok, err := refs.WithLock(ctx, BlobSweepLock, 10*time.Second, func(ctx context.Context) error {
		cutoff := opt.Now().Add(-opt.Grace)
		if !opt.DryRun {
			if err := blobs.Recover(ctx, cutoff); err != nil {
				return err
			}
		}
		var old []BlobInfo
		flush := func() error {
			if len(old) == 0 {
				return nil
			}
			keys := make([]string, len(old))
			for i, b := range old {
				keys[i] = b.Key
			}
			named, err := refs.BlobsNamed(ctx, keys)
			if err != nil {
				return err
			}
			for _, b := range old {
				if named[b.Key] {
					continue
				}
				rep.Unnamed++
				rep.UnnamedBytes += b.Size
				if len(rep.Keys) < maxReportKeys {
					rep.Keys = append(rep.Keys, b.Key)
				}
				if opt.DryRun {
					continue
				}
				removed, err := blobs.RemoveUnused(ctx, b.Key, cutoff)
				if err != nil {
					return err
				}
				if removed {
					rep.Removed++
				}
			}
			old = old[:0]
			return nil
		}
		err := blobs.Walk(ctx, func(b BlobInfo) error {
			rep.Blobs++
			if !b.ModTime.Before(cutoff) {
				rep.Young++
				return nil
			}
			old = append(old, b)
			if len(old) < sweepBatch {
				return nil
			}
			return flush()
		})
		if err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return rep, fmt.Errorf("sweep blobs: %w", err)
	}
	rep.Skipped = !ok
	return rep, nil
}

// BlobRef is a blob a row names. SHA256 and Size are those of the attachment, empty
// and -1 for a raw message (which has no recorded digest).
type BlobRef struct {
	Key    string
	SHA256 string
	Size   int64
}

// BlobRefLister lists every blob rows name (casebook/postgres.Store).
type BlobRefLister interface {
	BlobRefs(ctx context.Context, fn func(BlobRef) error) error
}

// BlobOpener reads blobs back (casebook/blob.Store).
type BlobOpener interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// The problems VerifyBlobs reports.
const (
	BlobMissing = "missing"
	BlobDamaged = "damaged"
)

// BlobProblem is a named blob that cannot be read back whole.
type BlobProblem struct {
	Key     string `json:"blob"`
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
}

// VerifyReport says what VerifyBlobs read.
type VerifyReport struct {
	Checked  int           `json:"checked"`
	Bytes    int64         `json:"bytes"`
	Problems []BlobProblem `json:"problems"`
}

// VerifyBlobs reads back every blob a row names, to the end, and reports those that
// are missing or damaged: an encrypted blob that fails authentication, or an
// attachment whose content does not match its recorded SHA-256 and size. progress,
// when set, is called after each blob.
func VerifyBlobs(ctx context.Context, refs BlobRefLister, blobs BlobOpener, progress func(VerifyReport)) (VerifyReport, error) {
	rep := VerifyReport{Problems: []BlobProblem{}}
	err := refs.BlobRefs(ctx, func(ref BlobRef) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.Checked++
		n, err := verifyBlob(ctx, blobs, ref)
		rep.Bytes += n
		switch {
		case errors.Is(err, ErrNotFound):
			rep.Problems = append(rep.Problems, BlobProblem{Key: ref.Key, Problem: BlobMissing, Detail: err.Error()})
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return err
		case err != nil:
			rep.Problems = append(rep.Problems, BlobProblem{Key: ref.Key, Problem: BlobDamaged, Detail: err.Error()})
		}
		if progress != nil {
			progress(rep)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify blobs: %w", err)
	}
	return rep, nil
}

func verifyBlob(ctx context.Context, blobs BlobOpener, ref BlobRef) (int64, error) {
	rc, err := blobs.Open(ctx, ref.Key)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return n, err
	}
	if ref.SHA256 != "" && (n != ref.Size || hex.EncodeToString(h.Sum(nil)) != ref.SHA256) {
		return n, fmt.Errorf("content does not match the attachment's SHA-256 and size (%d bytes read, %d expected)", n, ref.Size)
	}
	return n, nil
}
