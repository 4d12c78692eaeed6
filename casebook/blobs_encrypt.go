package casebook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BlobConverter is what EncryptBlobs needs from the blob store (casebook/blob.Store
// opened with a key).
type BlobConverter interface {
	BlobSweeper
	BlobOpener
	Blobs
	Plaintext(ctx context.Context, key string) (bool, error)
}

// BlobRenamer moves every row that names one blob to another (casebook/postgres.Store).
type BlobRenamer interface {
	RenameBlobRefs(ctx context.Context, from, to string) (int64, error)
	BlobsNamed(ctx context.Context, keys []string) (map[string]bool, error)
}

// EncryptReport says what EncryptBlobs did.
type EncryptReport struct {
	// Plaintext is how many plaintext blobs there were at the start.
	Plaintext int   `json:"plaintext"`
	Encrypted int   `json:"encrypted"`
	Bytes     int64 `json:"bytes"`
	// Rows is how many rows now name an encrypted blob instead.
	Rows int64 `json:"rows"`
}

// EncryptBlobs converts every plaintext blob: it stores the content again through
// blobs (which encrypts it, under a new name), moves the rows that named the old blob
// to the new one in one transaction, and then removes the plaintext copy. Each blob
// is converted whole or not at all, so an interrupted run is simply run again: blobs
// already encrypted are skipped.
//
// The plaintext copy is removed at once instead of waiting for the sweep's grace
// period, so PHI does not linger in the clear; that is safe because a store with a
// key names new blobs by a keyed hash and never by a plaintext SHA-256, so no update
// can come to name the old blob again (every instance must have the key first).
// progress, when set, is told how far it got.
func EncryptBlobs(ctx context.Context, refs BlobRenamer, blobs BlobConverter, progress func(done, total int)) (EncryptReport, error) {
	var rep EncryptReport
	var todo []BlobInfo
	err := blobs.Walk(ctx, func(b BlobInfo) error {
		plain, err := blobs.Plaintext(ctx, b.Key)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if plain {
			todo = append(todo, b)
		}
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("encrypt blobs: %w", err)
	}
	rep.Plaintext = len(todo)
	for i, b := range todo {
		if progress != nil {
			progress(i, len(todo))
		}
		n, rows, err := encryptBlob(ctx, refs, blobs, b)
		if err != nil {
			return rep, fmt.Errorf("encrypt blobs: %s: %w", b.Key, err)
		}
		rep.Encrypted++
		rep.Bytes += n
		rep.Rows += rows
	}
	if progress != nil {
		progress(len(todo), len(todo))
	}
	return rep, nil
}

func encryptBlob(ctx context.Context, refs BlobRenamer, blobs BlobConverter, b BlobInfo) (int64, int64, error) {
	rc, err := blobs.Open(ctx, b.Key)
	if errors.Is(err, ErrNotFound) {
		return 0, 0, nil // swept meanwhile
	}
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	stored, err := blobs.Put(ctx, rc, 1<<62)
	if err != nil {
		return 0, 0, err
	}
	if stored.Key == b.Key {
		return 0, 0, errors.New("the store did not encrypt it: is a key configured?")
	}
	rows, err := refs.RenameBlobRefs(ctx, b.Key, stored.Key)
	if err != nil {
		return 0, 0, err
	}
	named, err := refs.BlobsNamed(ctx, []string{b.Key})
	if err != nil {
		return 0, 0, err
	}
	if named[b.Key] {
		// Named again since the rename: an instance without the key is still
		// writing. Leave it for the next run.
		return stored.Size, rows, nil
	}
	// A cutoff in the future: remove whatever its time.
	if _, err := blobs.RemoveUnused(ctx, b.Key, time.Now().AddDate(1, 0, 0)); err != nil {
		return 0, 0, err
	}
	return stored.Size, rows, nil
}
