-- Catalog search through a trigram index (src/search_sql.rs says how the queries use it).
--
-- `catalog_search` holds every three-character window of each entry's lower-cased name and text
-- (FTS5's trigram tokenizer), so a term of three or more characters, looked up as a quoted
-- phrase, finds exactly the entries that contain it. `case_sensitive 1`: the columns are already
-- lower-cased in Rust (qa_pms_core::CatalogEntry), the same way on both backends, and the index
-- folds nothing more. It reads the columns' values from `catalog_entries` itself (external
-- content); the triggers below keep it in step with every insert, update and delete.
CREATE VIRTUAL TABLE catalog_search USING fts5(
    search_name,
    search_text,
    content = 'catalog_entries',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);

-- The entries that existed before this migration.
INSERT INTO catalog_search (catalog_search) VALUES ('rebuild');

CREATE TRIGGER catalog_search_insert AFTER INSERT ON catalog_entries BEGIN
    INSERT INTO catalog_search (rowid, search_name, search_text)
    VALUES (new.id, new.search_name, new.search_text);
END;

CREATE TRIGGER catalog_search_delete AFTER DELETE ON catalog_entries BEGIN
    INSERT INTO catalog_search (catalog_search, rowid, search_name, search_text)
    VALUES ('delete', old.id, old.search_name, old.search_text);
END;

-- A re-import that changes neither searched column leaves the index alone.
CREATE TRIGGER catalog_search_update AFTER UPDATE ON catalog_entries
WHEN old.id IS NOT new.id
  OR old.search_name IS NOT new.search_name
  OR old.search_text IS NOT new.search_text
BEGIN
    INSERT INTO catalog_search (catalog_search, rowid, search_name, search_text)
    VALUES ('delete', old.id, old.search_name, old.search_text);
    INSERT INTO catalog_search (rowid, search_name, search_text)
    VALUES (new.id, new.search_name, new.search_text);
END;

-- Entries in ranking order (name, source, url), with the lower-cased name, so that walking the
-- first ones tests a term against the name without reading the row.
CREATE INDEX catalog_entries_name ON catalog_entries (name, source, url, search_name);
