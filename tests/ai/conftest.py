from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pgvector.psycopg import register_vector


@pytest.fixture
def vconn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection with the pgvector types registered (as the executor does)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        register_vector(conn)
        yield conn
