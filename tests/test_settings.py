from __future__ import annotations

from pathlib import Path

import pytest

from querykit.errors import ConfigError
from querykit.settings import load_settings, mask_secrets, mask_url


def write_pyproject(directory: Path, body: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.querykit]\n' + body)
    return path


def test_defaults_without_any_source(tmp_path: Path) -> None:
    s = load_settings(cwd=tmp_path, env={})
    assert s.database_url is None
    assert s.schema == "schema"
    assert s.queries == ()
    assert s.migrations == tmp_path.resolve() / "migrations/sql"
    assert s.lock_timeout == 5.0


def test_pyproject_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path, 'schema = "app.schema"\nqueries = ["app.q1", "app.q2"]\nmigrations = "db/mig"\n'
    )
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    s = load_settings(cwd=sub, env={})
    assert s.project_dir == tmp_path.resolve()
    assert s.schema == "app.schema"
    assert s.queries == ("app.q1", "app.q2")
    assert s.migrations == tmp_path.resolve() / "db/mig"


def test_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'database_url = "postgresql://file/db"\nschema = "from_file"\n')
    env = {"DATABASE_URL": "postgresql://env/db", "QUERYKIT_SCHEMA": "from_env"}
    assert load_settings(cwd=tmp_path, env={}).database_url == "postgresql://file/db"
    s = load_settings(cwd=tmp_path, env=env)
    assert (s.database_url, s.schema) == ("postgresql://env/db", "from_env")
    assert s.sources["database_url"] == "env:DATABASE_URL"
    s = load_settings(cwd=tmp_path, env=env, database_url="postgresql://cli/db", schema=None)
    assert (s.database_url, s.schema) == ("postgresql://cli/db", "from_env")
    assert s.sources["database_url"] == "cli"


def test_querykit_database_url_beats_database_url(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://a/db", "QUERYKIT_DATABASE_URL": "postgresql://b/db"}
    assert load_settings(cwd=tmp_path, env=env).database_url == "postgresql://b/db"


def test_env_lists_and_numbers(tmp_path: Path) -> None:
    env = {"QUERYKIT_QUERIES": "a, b,,c", "QUERYKIT_LOCK_TIMEOUT": "2.5"}
    s = load_settings(cwd=tmp_path, env=env)
    assert s.queries == ("a", "b", "c")
    assert s.lock_timeout == 2.5


def test_unknown_key_lists_valid_keys(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, 'databse_url = "postgresql://x/y"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, env={})
    message = str(info.value)
    assert "'databse_url'" in message and str(path) in message
    for key in ("database_url", "schema", "queries", "migrations"):
        assert key in message


def test_bad_values_are_clear(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "queries = 3\n")
    with pytest.raises(ConfigError, match="queries"):
        load_settings(cwd=tmp_path, env={})
    write_pyproject(tmp_path, "")
    with pytest.raises(ConfigError, match="lock_timeout"):
        load_settings(cwd=tmp_path, env={"QUERYKIT_LOCK_TIMEOUT": "soon"})
    (tmp_path / "pyproject.toml").write_text("[tool.querykit\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cwd=tmp_path, env={})


def test_explicit_config_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    path = write_pyproject(other, 'schema = "x.schema"\n')
    assert load_settings(config=path, cwd=tmp_path, env={}).schema == "x.schema"
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config=tmp_path / "missing.toml", env={})


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        (
            "postgresql://db/app?password=s3cret&sslmode=require",
            "postgresql://db/app?password=***&sslmode=require",
        ),
        ("postgresql://u:p%40ss@h/d", "postgresql://u:***@h/d"),
        ("host=db password=s3cret dbname=app", "host=db password=*** dbname=app"),
        ("host=db password='s3 cret' dbname=app", "host=db password=*** dbname=app"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_secrets_removes_password_anywhere() -> None:
    url = "postgresql://app:s3cret@db/app"
    text = f"failed to reach {url}; password s3cret was refused"
    masked = mask_secrets(text, url)
    assert "s3cret" not in masked
    assert "postgresql://app:***@db/app" in masked


def test_the_testing_table_holds_the_test_seed(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path, 'seed = "demo:seed"\n\n[tool.querykit.testing]\nseed = "tests.seed:load"\n'
    )
    s = load_settings(cwd=tmp_path, env={})
    assert (s.seed, s.testing.seed) == ("demo:seed", "tests.seed:load")
    assert load_settings(cwd=tmp_path, env={"QUERYKIT_TESTING_SEED": "seed.sql"}).testing.seed == (
        "seed.sql"
    )


def test_an_unknown_key_in_the_testing_table_is_named(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.querykit.testing]\nsed = "tests.seed:load"\n')
    with pytest.raises(
        ConfigError, match=r"unknown setting 'sed' in .*testing.*valid keys are: seed"
    ):
        load_settings(cwd=tmp_path, env={})
