-- Full-text search for the conversation list's `q=` (store/src/search.rs): the words of the
-- contact's name/phone/email and of each message, case and Vietnamese diacritics folded — decomposed
-- (NFD), combining marks dropped, lower-cased, đ made d: the same expression as the queries
-- (postgres/search.rs, folded_sql; a test checks the two agree). GIN indexes over the folded text's
-- tsvector ('simple': no stemming, no stop words).
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple'::regconfig, translate(lower(regexp_replace(normalize(body, NFD), '[\u0300-\u036f]', '', 'g')), 'đĐ', 'dd')));
CREATE INDEX contacts_search ON contacts USING gin (to_tsvector('simple'::regconfig, translate(lower(regexp_replace(normalize(COALESCE(name, '') || ' ' || COALESCE(phone, '') || ' ' || COALESCE(email, ''), NFD), '[\u0300-\u036f]', '', 'g')), 'đĐ', 'dd')));
