"""recall@10 of nearest() through an HNSW index with querykit's default settings.

Clustered data, because uniform random vectors in 384 dimensions have no real
near neighbours (every pair is about equally far apart), which makes any
approximate index look broken. 1,000 centres of 5 points each: a query's ten
nearest neighbours span its own cluster and the next ones, the hard part.
Measured over repeated runs (HNSW levels are random): 0.97 to 0.98. ``make
bench`` measures the same on 100,000 vectors; this is the small, fast version.
"""

from __future__ import annotations

import numpy as np

from querykit import hnsw_index, index_sql, nearest

from ._support import Conn, copy_vectors, create_tables, execute, explain, vector_table

DIM = 384
CENTRES = 1000
PER_CENTRE = 5
QUERIES = 50
K = 10


def clustered(rng: np.random.Generator, centres: int, per_centre: int) -> np.ndarray:
    """Gaussian clusters: centres ~ N(0, 1), members at a spread of 0.3 around them."""
    centre = rng.normal(size=(centres, DIM))
    points = centre.repeat(per_centre, axis=0) + rng.normal(
        scale=0.3, size=(centres * per_centre, DIM)
    )
    return points.astype(np.float32)


def test_recall_at_10_with_default_hnsw_settings(vconn: Conn) -> None:
    rng = np.random.default_rng(2024)
    data = clustered(rng, CENTRES, PER_CENTRE)
    items = vector_table("vector", DIM)
    create_tables(vconn, items)
    copy_vectors(vconn, items, data)
    vconn.execute(index_sql(hnsw_index(items.c.embedding, "cosine")))  # m=16, ef_construction=64
    vconn.execute("ANALYZE items")

    # Queries near the data: a random member, moved by the clusters' own spread.
    members = rng.choice(len(data), size=QUERIES, replace=False)
    queries = data[members] + rng.normal(scale=0.3, size=(QUERIES, DIM)).astype(np.float32)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)

    first = nearest(items.c.embedding, queries[0], K, columns=[items.c.id])
    assert "Index Scan using items_embedding_hnsw_cosine_idx" in explain(vconn, first)
    assert first.to_sql().settings == (("hnsw.ef_search", "100"),)  # querykit's default

    found = 0
    for query in queries:
        exact = np.argsort(-(unit @ (query / np.linalg.norm(query))))[:K]
        rows = execute(vconn, nearest(items.c.embedding, query, K, columns=[items.c.id]))
        found += len({r[0] for r in rows} & set(exact.tolist()))
    recall = found / (QUERIES * K)
    assert recall >= 0.95, f"recall@10 = {recall:.3f}"
