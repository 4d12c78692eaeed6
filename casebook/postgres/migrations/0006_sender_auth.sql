-- Quarantine reasons as codes from a fixed set (sender_not_verified, token_expired,
-- file_type_not_allowed, no_case_ref, …) beside the sentence for a person; rows from
-- before have ''.
ALTER TABLE quarantine ADD COLUMN reason_code text NOT NULL DEFAULT '';
