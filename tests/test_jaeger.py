"""Jaeger's JSON model reads into the same rows as the OTLP it was translated from.

The HotROD trace of ``external/jaegerui-apiv3-gettrace.json`` is OTLP; this test writes it in
Jaeger's JSON model by the collector's OTLP→Jaeger rules (an independent translator, below: span
kind, status, scope and trace state as tags; resource as the process; events as logs; the parent
as a CHILD_OF reference; microsecond times) and checks that ingesting the Jaeger form stores
every span as ingesting the OTLP form does, with times cut to the microseconds Jaeger keeps.
Random damage to the Jaeger form is refused span by span, never a crash.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from conftest import CONFORMANCE, OUTCOME_EXIT, Cli

HOTROD = CONFORMANCE / "external" / "jaegerui-apiv3-gettrace.json"
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _tag(kv: dict[str, Any]) -> dict[str, Any]:
    (kind, value), *_ = kv["value"].items()
    jaeger_type = {"stringValue": "string", "intValue": "int64", "doubleValue": "float64"}
    jaeger_type |= {"boolValue": "bool"}
    if kind == "intValue":
        value = int(value)
    return {"key": kv["key"], "type": jaeger_type[kind], "value": value}


def to_jaeger(otlp: dict[str, Any]) -> dict[str, Any]:
    spans, processes = [], {}
    for n, rs in enumerate(otlp["resourceSpans"], start=1):
        attrs = rs["resource"]["attributes"]
        service = next(a["value"]["stringValue"] for a in attrs if a["key"] == "service.name")
        processes[f"p{n}"] = {
            "serviceName": service,
            "tags": [_tag(a) for a in attrs if a["key"] != "service.name"],
        }
        for ss in rs["scopeSpans"]:
            scope = ss.get("scope") or {}
            for s in ss["spans"]:
                tags = [_tag(a) for a in s.get("attributes", [])]
                tags.append({"key": "span.kind", "type": "string", "value": KINDS[s["kind"]]})
                if scope.get("name"):
                    tags.append(
                        {"key": "otel.scope.name", "type": "string", "value": scope["name"]}
                    )
                if scope.get("version"):
                    tags.append(
                        {"key": "otel.scope.version", "type": "string", "value": scope["version"]}
                    )
                status = s.get("status") or {}
                if status.get("code") == 2:
                    tags.append({"key": "otel.status_code", "type": "string", "value": "ERROR"})
                    tags.append({"key": "error", "type": "bool", "value": True})
                if status.get("message"):
                    tags.append(
                        {"key": "otel.status_description", "type": "string",
                         "value": status["message"]}
                    )  # fmt: skip
                start_us = int(s["startTimeUnixNano"]) // 1000
                spans.append(
                    {
                        "traceID": s["traceId"],
                        "spanID": s["spanId"],
                        "operationName": s["name"],
                        "references": [
                            {"refType": "CHILD_OF", "traceID": s["traceId"],
                             "spanID": s["parentSpanId"]}
                        ]
                        if s.get("parentSpanId")
                        else [],
                        "startTime": start_us,
                        "duration": int(s["endTimeUnixNano"]) // 1000 - start_us,
                        "tags": tags,
                        "logs": [
                            {
                                "timestamp": int(e["timeUnixNano"]) // 1000,
                                "fields": [
                                    {"key": "event", "type": "string", "value": e["name"]},
                                    *(_tag(a) for a in e.get("attributes", [])),
                                ],
                            }
                            for e in s.get("events", [])
                        ],
                        "processID": f"p{n}",
                    }
                )  # fmt: skip
    return {"data": [{"traceID": spans[0]["traceID"], "spans": spans, "processes": processes}]}


def _cut_to_micros(otlp: dict[str, Any]) -> dict[str, Any]:
    """The OTLP document with every time cut to microseconds (all Jaeger keeps)."""
    out = copy.deepcopy(otlp)
    for rs in out["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                start = int(s["startTimeUnixNano"]) // 1000
                end_us = int(s["endTimeUnixNano"]) // 1000
                s["startTimeUnixNano"] = str(start * 1000)
                s["endTimeUnixNano"] = str(end_us * 1000)
                s.pop("flags", None)  # Jaeger's flags are not OTLP's; otel_traces keeps none
                for e in s.get("events", []):
                    e["timeUnixNano"] = str(int(e["timeUnixNano"]) // 1000 * 1000)
    return out


DUMP = (
    'SELECT * EXCLUDE (Timestamp, "Events.Timestamp"), epoch_ns(Timestamp) AS ts,'
    ' list_transform("Events.Timestamp", lambda t: epoch_ns(t)) AS ev_ts FROM otel_traces'
    " ORDER BY SpanId"
)


def test_jaeger_form_stores_what_the_otlp_form_stores(tmp_path: Path) -> None:
    if not HOTROD.exists():
        pytest.skip("conformance corpus missing")
    otlp = json.loads(HOTROD.read_text())["result"]
    (tmp_path / "otlp.json").write_text(json.dumps(_cut_to_micros(otlp)))
    (tmp_path / "jaeger.json").write_text(json.dumps(to_jaeger(otlp)))
    stores = []
    for name in ("otlp", "jaeger"):
        cli = Cli(tmp_path / f"{name}.duckdb")
        result = cli("ingest", "--strict", str(tmp_path / f"{name}.json"))
        assert result.exit_code == 0, result.output
        stores.append(cli.query(DUMP))
    assert len(stores[0]) == 40
    for a, b in zip(*stores, strict=True):
        assert a == b, a["SpanId"]
    canonical = "SELECT * EXCLUDE (attributes, resource_attributes) FROM ai_spans ORDER BY span_id"
    assert Cli(tmp_path / "otlp.duckdb").query(canonical) == Cli(tmp_path / "jaeger.duckdb").query(
        canonical
    )


@pytest.mark.parametrize("seed", range(12))
def test_damaged_jaeger_is_refused_span_by_span(tmp_path: Path, seed: int) -> None:
    """Odd values anywhere in a Jaeger trace: the bad spans are refused with a reason, the rest
    land, and nothing is lost or invented (stored + refused = spans in the file)."""
    if not HOTROD.exists():
        pytest.skip("conformance corpus missing")
    rng = random.Random(seed)
    doc = to_jaeger(json.loads(HOTROD.read_text())["result"])
    spans = doc["data"][0]["spans"]
    odd: list[Any] = [None, "", 0, -1, "x", [], {}, [None], {"a": 1}, True, "zz", 10**30]
    for span in rng.sample(spans, 5):
        key = rng.choice(["spanID", "startTime", "duration", "tags", "logs", "references",
                          "processID", "operationName", "traceID"])  # fmt: skip
        span[key] = copy.deepcopy(rng.choice(odd))
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(doc))
    cli = Cli(tmp_path / "s.duckdb")
    result = cli("ingest", "-f", "json", str(path))
    summary = json.loads(result.stdout)
    assert result.exit_code == OUTCOME_EXIT[summary["outcome"]], result.output
    assert summary["outcome"] == ("partial" if summary["rejected"] else "all")
    assert summary["spans"] + summary["rejected"] + summary["duplicates"] == len(spans)
    reasons = cli.query("SELECT reason FROM aiobs_rejects")
    assert all(r["reason"].startswith(("Jaeger span: ", "span: ")) for r in reasons), reasons
