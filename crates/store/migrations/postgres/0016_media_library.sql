-- The saved-media library (store/src/library.rs): files uploaded once per workspace, named and
-- tagged, picked into the composer. The bytes live in the media store under `library/<id>`.
CREATE TABLE saved_media (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    filename      TEXT NOT NULL,
    content_type  TEXT COLLATE "C" NOT NULL,
    size_bytes    BIGINT NOT NULL,
    created_by    TEXT COLLATE "C",
    created_at    BIGINT NOT NULL
);
CREATE INDEX saved_media_workspace ON saved_media (workspace_id, created_at DESC, id DESC);

-- Quick replies may carry files of the library (a "/banggia" that sends the price list): JSON
-- array of saved_media ids, in the order they are sent.
ALTER TABLE quick_replies ADD COLUMN media TEXT NOT NULL DEFAULT '[]';
