"""querykit.testing: a pytest plugin that gives each test a freshly migrated database.

Installed with querykit (the ``pytest11`` entry point ``querykit``) and on in every
project whose ``pyproject.toml`` has a ``[tool.querykit]`` table; ``-p no:querykit``
turns it off. Fixtures:

- ``qk_db``: a ``Database`` on a database of its own, cloned for this test from a
  template that the project's migrations built (``qk_async_db``: an ``AsyncDatabase``);
- ``qk_tx``: a ``Database`` pinned to one connection inside a transaction that is
  rolled back after the test: unit-test speed, but only for code that never commits
  or opens a second connection (it fails loudly, naming ``qk_db``, when it does);
  ``qk_async_tx`` is the same for async tests;
- ``qk_url``: the URL of the test's database, for code that connects by itself;
- the marker ``@pytest.mark.qk_migrations(upto="0003")``: a database migrated only
  up to that version, for testing the migrations that follow.

    def test_signup(qk_db):
        qk_db.execute(insert(users).values(email="a@example.com"))
        assert qk_db.scalar(select(count()).select_from(users)) == 1

The server is ``DATABASE_URL`` when set, else an embedded PostgreSQL started for
the session in a temporary directory, on the RAM disk when there is one, with the
settings of a throwaway test cluster (``--qk-keep``: the project's own embedded
server, kept running, so the template cache survives between runs).
"""

__all__: list[str] = []
