"""Pinned types of the settings API (checked by mypy --strict, not run)."""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

from querykit import Settings, load_settings, mask_url

settings = load_settings(database_url="postgresql://u:p@h/d")
assert_type(settings, Settings)
assert_type(settings.database_url, str | None)
assert_type(settings.queries, tuple[str, ...])
assert_type(settings.migrations, Path)
assert_type(mask_url("postgresql://u:p@h/d"), str)
