-- The HNSW index for cosine similarity search. CONCURRENTLY keeps the table
-- writable while it builds; querykit runs this file outside a transaction and
-- drops an INVALID leftover before a retry.
CREATE INDEX CONCURRENTLY embedding_embedding_hnsw_idx
    ON embedding USING hnsw (embedding vector_cosine_ops);

-- querykit:down
DROP INDEX CONCURRENTLY embedding_embedding_hnsw_idx;
