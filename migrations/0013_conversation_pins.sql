-- A person may pin conversations: pinned ones head the sidebar, most recently pinned first.
ALTER TABLE conversations ADD COLUMN pinned_at BIGINT;
