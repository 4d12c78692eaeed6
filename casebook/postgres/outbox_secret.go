package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// SecretBox seals short secrets for a column and opens them again
// (casebook/blob.Key, under the blob master key).
type SecretBox interface {
	SealSecret(plaintext, aad string) string
	OpenSecret(sealed, aad string) (string, error)
}

// The JSON keys of casebook.TemporaryPasswordMail that hold the password, in the
// clear or sealed under each key that may have to send it (one, or two during a key
// rotation); scrubData removes both.
const (
	plainPasswordKey  = "password"
	sealedPasswordKey = "password_sealed"
)

// SealSecretsWith makes the store seal the temporary password of every mail it
// queues from now on, and open it when the outbox worker claims the mail. Without a
// box passwords wait in plaintext, as before a key was configured.
func (s *Store) SealSecretsWith(box SecretBox) { s.box = box }

// passwordAAD binds a sealed password to its mail.
func passwordAAD(messageID string) string { return "outbox password " + messageID }

// sealPassword returns d with its password sealed, when there is a box.
func (s *Store) sealPassword(messageID string, d casebook.TemporaryPasswordMail) casebook.TemporaryPasswordMail {
	if s.box == nil || d.Password == "" {
		return d
	}
	d.Sealed = []string{s.box.SealSecret(d.Password, passwordAAD(messageID))}
	d.Password = ""
	return d
}

// openPassword returns d with the plaintext password back for the mail composer,
// when one of the sealed copies opens with the store's box. One that does not open
// stays missing, and the mail fails as having no password (and is scrubbed).
func (s *Store) openPassword(messageID string, d casebook.TemporaryPasswordMail) casebook.TemporaryPasswordMail {
	sealed := d.Sealed
	d.Sealed = nil
	if s.box != nil && len(sealed) > 0 {
		d.Password = openAny(sealed, []SecretBox{s.box}, passwordAAD(messageID))
	}
	return d
}

// ResealOutboxSecrets seals the password of every pending mail under each of to,
// opening it with any of from or to, and returns how many rows it rewrote
// (`casebook blobs rekey`). Rows already sealed under exactly to are left alone.
// A plaintext password (queued before a key existed) is sealed too.
func (s *Store) ResealOutboxSecrets(ctx context.Context, from []SecretBox, to []SecretBox) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []struct {
			ID        int64  `db:"id"`
			MessageID string `db:"message_id"`
			Data      []byte `db:"data"`
		}
		if err := tx.SelectContext(ctx, &rows, `SELECT id, message_id, data FROM outbox
			WHERE status = 'pending' AND (data ? '`+plainPasswordKey+`' OR data ? '`+sealedPasswordKey+`') FOR UPDATE`); err != nil {
			return err
		}
		for _, r := range rows {
			var d casebook.TemporaryPasswordMail
			if err := json.Unmarshal(r.Data, &d); err != nil {
				return fmt.Errorf("outbox row %d: %w", r.ID, err)
			}
			aad := passwordAAD(r.MessageID)
			pw := d.Password
			if pw == "" {
				pw = openAny(d.Sealed, append(append([]SecretBox{}, to...), from...), aad)
				if pw == "" {
					continue // under no key we hold: left for the worker to fail
				}
			}
			d.Password, d.Sealed = "", make([]string, len(to))
			for i, b := range to {
				d.Sealed[i] = b.SealSecret(pw, aad)
			}
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET data = $2 WHERE id = $1`, r.ID, string(b)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reseal outbox secrets: %w", err)
	}
	return n, nil
}

func openAny(sealed []string, boxes []SecretBox, aad string) string {
	for _, str := range sealed {
		for _, b := range boxes {
			if pw, err := b.OpenSecret(str, aad); err == nil {
				return pw
			}
		}
	}
	return ""
}
