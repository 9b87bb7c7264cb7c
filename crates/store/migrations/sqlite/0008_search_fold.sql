-- Search finds "Đơn" when "don" is typed. FTS5's unicode61 tokenizer removes diacritics but keeps
-- đ/Đ, a letter of its own, which Vietnamese customers and agents often type as d: the indexes now
-- get the text with đ folded (the queries fold it too: store/src/search.rs). They become contentless
-- (they never hand text back: queries read rowids only), kept by the triggers below.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TRIGGER contacts_fts_insert;
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
DROP TABLE messages_fts;
DROP TABLE contacts_fts;

CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, replace(replace(new.body, 'đ', 'd'), 'Đ', 'd'));
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
    INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, replace(replace(new.body, 'đ', 'd'), 'Đ', 'd'));
END;
INSERT INTO messages_fts (rowid, body) SELECT rowid, replace(replace(body, 'đ', 'd'), 'Đ', 'd') FROM messages;

CREATE VIRTUAL TABLE contacts_fts USING fts5(name, phone, email, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, name, phone, email)
    VALUES (new.rowid, replace(replace(new.name, 'đ', 'd'), 'Đ', 'd'), new.phone, new.email);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM contacts_fts WHERE rowid = old.rowid;
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, phone, email ON contacts BEGIN
    DELETE FROM contacts_fts WHERE rowid = old.rowid;
    INSERT INTO contacts_fts (rowid, name, phone, email)
    VALUES (new.rowid, replace(replace(new.name, 'đ', 'd'), 'Đ', 'd'), new.phone, new.email);
END;
INSERT INTO contacts_fts (rowid, name, phone, email)
SELECT rowid, replace(replace(name, 'đ', 'd'), 'Đ', 'd'), phone, email FROM contacts;
