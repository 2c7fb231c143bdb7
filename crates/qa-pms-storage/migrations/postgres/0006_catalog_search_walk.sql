-- The first-tier walk of the catalog search on PostgreSQL (src/search_sql.rs, `walk_sql` and
-- `occurs_sql`, says how the queries use these).
--
-- Entries in ranking order (name, source, url, byte order), with the lower-cased name and the id,
-- so that walking the first ones tests the terms against the name without reading the table
-- (an index-only scan: VACUUM keeps the visibility map current). A B-tree entry holds at most
-- about 2,700 bytes, which a long name (500 characters, up to 2,000 bytes), its lower-cased copy
-- and a long url (2,048 characters) can exceed: entries above 2,000 bytes of the three are kept
-- out of it and in the small index after it, which the walk reads besides.
CREATE INDEX catalog_entries_walk ON catalog_entries
    (name COLLATE "C", source COLLATE "C", url COLLATE "C") INCLUDE (search_name, id)
    WHERE octet_length(name) + octet_length(search_name) + octet_length(url) <= 2000;
CREATE INDEX catalog_entries_walk_long ON catalog_entries (name COLLATE "C")
    WHERE octet_length(name) + octet_length(search_name) + octet_length(url) > 2000;

-- Whether any entry's lower-cased name (text) matches `pattern` (a LIKE pattern, `\` escapes),
-- through the trigram indexes of 0004 only: asked with EXISTS, the planner would otherwise read
-- the table or the walk index in order, hoping for an early match, and read all of it when the
-- term occurs nowhere. The search asks these only for a term that a look at a few hundred entries
-- did not find, which the trigram index answers from short posting lists.
CREATE FUNCTION catalog_search_name_occurs(pattern text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET enable_seqscan = off SET enable_indexscan = off SET enable_indexonlyscan = off
    AS $$ SELECT EXISTS (SELECT 1 FROM catalog_entries WHERE search_name LIKE pattern ESCAPE '\') $$;

CREATE FUNCTION catalog_search_text_occurs(pattern text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET enable_seqscan = off SET enable_indexscan = off SET enable_indexonlyscan = off
    AS $$ SELECT EXISTS (SELECT 1 FROM catalog_entries WHERE search_text LIKE pattern ESCAPE '\') $$;
