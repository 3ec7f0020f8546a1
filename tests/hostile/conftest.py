"""Hostile-input tests: the same in-process app on the real PostgreSQL as tests/api."""

from __future__ import annotations

from tests.api.conftest import Api, api

__all__ = ["Api", "api"]
