-- Customer profiles from the channels (server/src/profiles.rs, core::contact).
-- name_source: 'agent' when an agent typed the name (a synced name never replaces it unless the
-- agent asks), 'channel' or NULL when it came from the channel (agents could not type names before).
-- avatar_file: our copy of the picture under <data_dir>/media/avatars/<avatar_file>, its type
-- derived from its bytes; avatar_key: the provider's identity of that picture (not downloaded
-- twice); avatar_url (0003) keeps the provider's URL (shown as is where bytes may not be kept).
ALTER TABLE contacts ADD COLUMN name_source TEXT;
ALTER TABLE contacts ADD COLUMN avatar_file TEXT;
ALTER TABLE contacts ADD COLUMN avatar_type TEXT;
ALTER TABLE contacts ADD COLUMN avatar_key TEXT;
ALTER TABLE contacts ADD COLUMN profile_synced_at INTEGER;
-- The customer's public handle on the channel (Telegram, Instagram): the "open in app" link.
ALTER TABLE contact_identities ADD COLUMN username TEXT;
