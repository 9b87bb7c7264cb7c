-- Files customers send (server/src/media_fetch.rs, core::inbound_media): an attachment row per
-- file of an inbound message, written in the ingest transaction, downloaded by a leased worker.
-- source_kind/source: where the bytes come from ('url' a CDN URL, 'whatsapp_media' a media id,
-- 'telegram_file' a file id); NULL for files we stored ourselves (uploads).
-- state: 'pending' (next_attempt_at: when it is tried; a claim moves it past the lease),
-- 'ready' (our copy is in the media store), 'failed' (every attempt failed; last_error says
-- why), 'remote' (Instagram: never downloaded, shown from source while the URL lives).
-- thumbnail_key: our small JPEG of an image, in the media store.
ALTER TABLE attachments ADD COLUMN state TEXT COLLATE "C" NOT NULL DEFAULT 'ready';
ALTER TABLE attachments ADD COLUMN media_kind TEXT COLLATE "C";
ALTER TABLE attachments ADD COLUMN source_kind TEXT COLLATE "C";
ALTER TABLE attachments ADD COLUMN source TEXT COLLATE "C";
ALTER TABLE attachments ADD COLUMN inbox_id TEXT COLLATE "C";
ALTER TABLE attachments ADD COLUMN position BIGINT;
ALTER TABLE attachments ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE attachments ADD COLUMN last_error TEXT COLLATE "C";
ALTER TABLE attachments ADD COLUMN thumbnail_key TEXT COLLATE "C";
-- a video's own thumbnail at the provider ('<source_kind>:<source>'), made into ours when it is fetched
ALTER TABLE attachments ADD COLUMN thumbnail_source TEXT COLLATE "C";
-- one row per file of a message: a redelivered webhook adds (and downloads) nothing
CREATE UNIQUE INDEX attachments_inbound ON attachments (message_id, position) WHERE position IS NOT NULL;
-- the download worker's queue
CREATE INDEX attachments_due ON attachments (next_attempt_at, id) WHERE state = 'pending';
