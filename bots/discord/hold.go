package discord

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/casebookhq/casebook/bots"
	"github.com/casebookhq/casebook/casebook"
)

// HeldFiles keeps the bytes of files that wait for someone to name their case: the
// blob store (casebook/blob), which every instance shares, so that the answer may
// reach any instance. Held bytes are encrypted at rest like attachments, and the
// blob sweep removes them once their hold has ended.
type HeldFiles interface {
	Put(ctx context.Context, r io.Reader, limit int64) (casebook.StoredBlob, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Store is what the bot needs from storage (*postgres.Store): the chat logic's, and
// where a held file's bytes are kept.
type Store interface {
	bots.Store
	// KeepHeldChatFile records the blob that holds a held file's bytes, with its hold.
	// It reports casebook.ErrNotFound when the hold has been taken or has expired.
	KeepHeldChatFile(ctx context.Context, platform casebook.Source, fileID, blobKey string) error
}

// hold keeps the files the chat logic holds for their case. They are downloaded when
// the bot asks, not when it is answered: attachment URLs are signed and expire, and
// the bot stores bytes, never links.
type hold struct {
	blobs HeldFiles
	store Store
	limit int64
}

// put stores the bytes open yields and names the blob on the hold of attachment id.
func (h *hold) put(ctx context.Context, id string, open func(context.Context) (io.ReadCloser, error)) error {
	r, err := open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := h.blobs.Put(ctx, r, h.limit)
	if err != nil {
		return fmt.Errorf("hold file: %w", err)
	}
	if err := h.store.KeepHeldChatFile(ctx, casebook.SourceDiscord, id, b.Key); err != nil {
		// Answered before the bytes were in: the answer found none and said so, and
		// the sweep removes the blob no row names.
		return fmt.Errorf("hold file: %w", err)
	}
	return nil
}

// opener is bots.Options.Reopen: a held file's bytes, from the blob store.
func (h *hold) opener(f bots.File) bots.Opener {
	return func(ctx context.Context, _ int64) (io.ReadCloser, error) {
		gone := &bots.PublicError{Public: "it could not be kept while waiting for its case: upload it again.", Err: fmt.Errorf("held file %s: %w", f.ID, casebook.ErrNotFound)}
		if f.Held == "" {
			return nil, gone
		}
		rc, err := h.blobs.Open(ctx, f.Held)
		if errors.Is(err, casebook.ErrNotFound) {
			gone.Err = err
			return nil, gone
		}
		if err != nil {
			return nil, fmt.Errorf("held file: %w", err)
		}
		// The size cap was enforced when the file was held, and AddUpdate enforces
		// it again while it streams.
		return rc, nil
	}
}
