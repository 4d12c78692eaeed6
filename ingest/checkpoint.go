package ingest

import (
	"fmt"
	"strconv"

	"github.com/casebookhq/casebook/casebook"
)

// CheckpointChannel is the channel under which mailbox positions are kept.
const CheckpointChannel = "imap"

// CheckpointKey names the position of loc's mailbox: the mailbox and its UIDVALIDITY.
// UIDs are only comparable within one UIDVALIDITY (RFC 9051 section 2.3.1.1), so a
// mailbox that was recreated starts a new key instead of skipping mail below an old UID.
func CheckpointKey(loc Location) string {
	return fmt.Sprintf("%s;uidvalidity=%d", loc.Mailbox, loc.UIDValidity)
}

// CheckpointAt is the position to commit together with the message at loc: its UID is
// done, and the next pass fetches above it.
func CheckpointAt(loc Location) casebook.Checkpoint {
	return casebook.Checkpoint{
		Channel: CheckpointChannel,
		Key:     CheckpointKey(loc),
		Value:   strconv.FormatUint(uint64(loc.UID), 10),
	}
}

// ParseCheckpoint reads a value written by CheckpointAt back as a UID.
func ParseCheckpoint(value string) (uint32, error) {
	uid, err := strconv.ParseUint(value, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %q: %w", value, err)
	}
	return uint32(uid), nil
}
