"""The shared trace filter: keyword-only, built from what a person typed, one notion of "no filter"."""

from __future__ import annotations

from datetime import datetime

import pytest

from aiobs.analysis.filters import TraceFilter
from aiobs.errors import UsageError


def test_keywords_only() -> None:
    with pytest.raises(TypeError):
        TraceFilter(datetime(2026, 11, 1))  # type: ignore[misc]


def test_from_options_parses_the_text_a_person_typed() -> None:
    filt = TraceFilter.from_options(
        since="2026-11-14T14:00Z..2026-11-14T16:00Z",
        services=["support-chat"],
        status="ERROR",
        min_duration="2s",
        where="tool_name = 'lookup_charge_v1'",
    )
    assert filt.since == datetime(2026, 11, 14, 14)
    assert filt.until == datetime(2026, 11, 14, 16)
    assert filt.status == "error"
    assert filt.min_duration_ms == 2000.0
    assert filt.where is not None and "lookup_charge_v1" in filt.where.sql
    sql, params = filt.sql()
    assert sql.count("?") == len(params) == 5
    assert not filt.is_empty


def test_bad_text_is_a_usage_error_before_any_store() -> None:
    with pytest.raises(UsageError, match="--min-duration"):
        TraceFilter.from_options(min_duration="soon")
    with pytest.raises(UsageError, match="--where"):
        TraceFilter.from_options(where="tool_name = ")


def test_empty_and_replace() -> None:
    empty = TraceFilter.from_options()
    assert empty.is_empty and empty.sql() == ("TRUE", [])
    later = empty.replace(since=datetime(2026, 11, 14))
    assert not later.is_empty and empty.is_empty  # a copy: the original is unchanged
    assert TraceFilter.from_options(services=[""]).is_empty is False
