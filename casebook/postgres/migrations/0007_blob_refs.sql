-- The blob sweep asks, for a batch of blob keys, whether any row names them: an
-- attachment, a quarantined message's raw copy, or an update's raw message (meta).
-- attachments.blob_key is indexed already; these make the other two lookups cheap.
CREATE INDEX quarantine_raw_blob_idx ON quarantine (raw_blob) WHERE raw_blob <> '';
CREATE INDEX updates_raw_blob_idx ON updates ((meta->>'raw_blob')) WHERE meta ? 'raw_blob';
