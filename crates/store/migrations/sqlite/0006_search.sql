-- Full-text search for the conversation list's `q=`: message bodies and contacts' name, phone and
-- email. unicode61 with remove_diacritics folds Vietnamese diacritics, so "khach" finds "Khách".
-- External-content tables: the text lives once, in messages/contacts; triggers keep the index.
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

CREATE VIRTUAL TABLE contacts_fts USING fts5(name, phone, email, content='contacts', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, name, phone, email) VALUES (new.rowid, new.name, new.phone, new.email);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, phone, email) VALUES ('delete', old.rowid, old.name, old.phone, old.email);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, phone, email ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, phone, email) VALUES ('delete', old.rowid, old.name, old.phone, old.email);
    INSERT INTO contacts_fts (rowid, name, phone, email) VALUES (new.rowid, new.name, new.phone, new.email);
END;
INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild');
