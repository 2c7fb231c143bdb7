-- Catalog search through trigram indexes (src/search_sql.rs says how the queries use them).
--
-- pg_trgm is a contrib extension, trusted since PostgreSQL 13: the database owner may create it.
-- A GIN index of `gin_trgm_ops` answers `LIKE '%term%'` for a term of three or more characters
-- from the term's trigrams and rechecks the rows it finds, so the result is exact. The indexed
-- columns are lower-cased in Rust (qa_pms_core::CatalogEntry), the same way on both backends.
-- PostgreSQL keeps the indexes in step with the table itself, and builds them here for the
-- existing rows.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX catalog_entries_search_name ON catalog_entries USING gin (search_name gin_trgm_ops);
CREATE INDEX catalog_entries_search_text ON catalog_entries USING gin (search_text gin_trgm_ops);
