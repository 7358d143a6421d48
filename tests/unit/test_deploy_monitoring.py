"""The alert rules (deploy/prometheus/alerts.yml) and the Grafana dashboard (deploy/grafana/wa-inbox.json) load, their
expressions are valid PromQL (promql-parser: Prometheus's own grammar), and every series they name is one the
product exports, so a renamed metric cannot leave an alert that never fires."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import app.metrics  # noqa: F401 - registers the product's series
from app.config import ROOT

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def series_of(expression: str) -> set[str]:
    """The metric names an expression selects."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)
        for child in ("expr", "lhs", "rhs", "vector_selector", "param"):
            if hasattr(node, child) and getattr(node, child) is not None:
                walk(getattr(node, child))
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expression))
    return found


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    assert isinstance(loaded, dict) and set(loaded) == {"groups"}
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def panels_exprs() -> list[str]:
    board = json.loads((ROOT / "deploy/grafana/wa-inbox.json").read_text())
    assert board["title"] and board["panels"]
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def test_every_alert_rule_is_complete_and_valid():
    seen = set()
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"] not in seen and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        seen.add(rule["alert"])
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert "for" not in rule or DURATION.match(rule["for"])
        promql_parser.parse(rule["expr"])
    # What the issue names: queue lag, send failures, signatures, quality, tokens, circuit, worker down.
    assert {"WaInboxAgentRepliesWaiting", "WaInboxSendFailures", "WaInboxWebhookSignatureFailures",
            "WaInboxNumberQualityRed", "WaInboxTokenRefused", "WaInboxCircuitOpen", "WaInboxWorkerDown"} <= seen


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_series_named_is_one_we_export(source):
    expressions = [r["expr"] for r in rules()] if source == "alerts" else panels_exprs()
    named = set().union(*(series_of(e) for e in expressions))
    assert named and named - PROMETHEUS_OWN <= exported(), sorted(named - PROMETHEUS_OWN - exported())


def test_a_bad_expression_or_an_unknown_series_would_be_caught():
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(inbox_sends_total[5m])")
    assert "inbox_sends_totl" not in exported() and series_of("rate(inbox_sends_totl[5m])") == {"inbox_sends_totl"}
