-- The saved-media library (store/src/library.rs): files uploaded once per workspace, named and
-- tagged, picked into the composer. The bytes live in the media store under `library/<id>`.
CREATE TABLE saved_media (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    created_by    TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX saved_media_workspace ON saved_media (workspace_id, created_at DESC, id DESC);

-- Quick replies may carry files of the library (a "/banggia" that sends the price list): JSON
-- array of saved_media ids, in the order they are sent.
ALTER TABLE quick_replies ADD COLUMN media TEXT NOT NULL DEFAULT '[]';
