package discord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"casebook/bots"
	"casebook/casebook"
)

// holdDir keeps the bytes of files that wait for someone to name their case. They are
// downloaded when the bot asks, not when it is answered: attachment URLs are signed
// and expire, and the bot stores bytes, never links.
type holdDir struct{ dir string }

func openHoldDir(dir string) (*holdDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("discord hold directory: %w", err)
	}
	return &holdDir{dir: dir}, nil
}

// path names the file of attachment id. Ids are snowflakes (decimal digits); anything
// else could climb out of the directory.
func (h *holdDir) path(id string) (string, error) {
	if id == "" || len(id) > 20 {
		return "", fmt.Errorf("%w: attachment id %q", casebook.ErrInvalidInput, id)
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("%w: attachment id %q", casebook.ErrInvalidInput, id)
		}
	}
	return filepath.Join(h.dir, id), nil
}

// put stores the bytes open yields as the file of attachment id.
func (h *holdDir) put(ctx context.Context, id string, open func(context.Context) (io.ReadCloser, error)) error {
	dst, err := h.path(id)
	if err != nil {
		return err
	}
	r, err := open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(h.dir, ".part-*")
	if err != nil {
		return fmt.Errorf("hold file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("hold file: %w", err)
	}
	return nil
}

// opener is bots.Options.Reopen: a held file's bytes, removed once read.
func (h *holdDir) opener(f bots.File) bots.Opener {
	return func(_ context.Context, limit int64) (io.ReadCloser, error) {
		p, err := h.path(f.ID)
		if err != nil {
			return nil, err
		}
		fh, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &bots.PublicError{Public: "it could not be kept while waiting for its case: upload it again.", Err: err}
		}
		if err != nil {
			return nil, fmt.Errorf("held file: %w", err)
		}
		if st, err := fh.Stat(); err == nil && st.Size() > limit {
			fh.Close()
			return nil, fmt.Errorf("%w: %d bytes", casebook.ErrTooLarge, st.Size())
		}
		return removeOnClose{fh}, nil
	}
}

type removeOnClose struct{ *os.File }

func (r removeOnClose) Close() error {
	err := r.File.Close()
	os.Remove(r.Name())
	return err
}

// run removes held files older than maxAge every minute until ctx ends: their hold
// in the database has expired.
func (h *holdDir) run(ctx context.Context, maxAge time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		entries, err := os.ReadDir(h.dir)
		if err != nil {
			log.WarnContext(ctx, "cannot list held discord files", slog.Any("error", err))
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > maxAge {
				os.Remove(filepath.Join(h.dir, e.Name()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
