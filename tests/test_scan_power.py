"""Low traffic: a service with a few traces an hour is scanned trace by trace. Synthetic
services from the detection-power bench's generator (daily seasonality), through the real
ingest and the real scan."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import scan_power as power


def test_a_x4_tokens_change_of_two_hours_at_five_traces_an_hour_is_found(tmp_path: Path) -> None:
    day0 = power.START + timedelta(days=power.HISTORY_DAYS)
    plants = [
        power.Plant(f"small-{i}", "tokens", 4.0, day0 + timedelta(hours=h), 2)
        for i, h in enumerate((10, 15, 20))
    ]
    files = power.write_store_files(tmp_path, plants, 5, power.HISTORY_DAYS + 1, seed=3)
    until = day0 + timedelta(days=1)
    incidents, _ = power.scan_store(tmp_path / "store.duckdb", files, day0, until)
    for p in plants:
        assert p.start is not None
        mine = [i for i in incidents if i["segment"]["service"] == p.service]
        assert len(mine) == 1, (p.service, [i["summary"] for i in mine])
        inc = mine[0]
        assert abs(inc["start"] - p.start) <= timedelta(hours=1), (inc["start"], p.start)
        assert inc["symptom"] == "tokens_per_trace" or "tokens_per_trace" in {
            a["metric"] for a in inc["anomalies"]
        }


def test_a_clean_week_at_five_traces_an_hour_stays_quiet(tmp_path: Path) -> None:
    plants = [power.Plant("quiet", None, 1.0, None, 0)]
    files = power.write_store_files(tmp_path, plants, 5, power.HISTORY_DAYS + 7, seed=5)
    since = power.START + timedelta(days=power.HISTORY_DAYS)
    incidents, _ = power.scan_store(
        tmp_path / "store.duckdb", files, since, since + timedelta(days=7)
    )
    assert len(incidents) <= 1, [i["summary"] for i in incidents]
