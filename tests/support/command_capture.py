"""What the product asks MongoDB, as the driver sends it: a pymongo command listener, and explain().

``RECORDER`` is registered with ``pymongo.monitoring.register`` when this module is imported, so
every client created afterwards (the app's motor client included: no product change) reports to
it. It records nothing until armed with ``capture(database)``; then it keeps the commands sent to
that database (the test's own) while the block runs, whoever sent them.

``server_indexes`` reads a collection's indexes from the server (``list_indexes()``), and
``explain_reads`` asks the server's planner about each captured read, for information only: it is
written to test-artifacts/index-explain.json and never asserted on (the test server's planner is
not mongod's).
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import json_util
from pymongo import monitoring

from tests.support.index_rule import Index, Query, Verdict, check, queries_of

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "index-explain.json"
_DROPPED = frozenset({"lsid", "$db", "$clusterTime", "txnNumber", "$readPreference", "readConcern",
                      "writeConcern", "apiVersion", "startTransaction", "autocommit"})


@dataclass(frozen=True)
class Captured:
    name: str
    database: str
    command: Mapping[str, Any]
    label: str

    @property
    def collection(self) -> str:
        return str(self.command.get(self.name, ""))

    def queries(self) -> list[Query]:
        return queries_of(self.name, self.command)


class Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sink: list[Captured] | None = None
        self._database: str | None = None
        self.label = ""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            sink, database, label = self._sink, self._database, self.label
        if sink is None or event.database_name != database:
            return
        command = {k: v for k, v in event.command.items() if k not in _DROPPED}
        if event.command_name == "insert":  # the documents themselves are not needed: their ids are
            command["documents"] = [{"_id": d.get("_id")} for d in command.get("documents") or []]
        sink.append(Captured(event.command_name, event.database_name, copy.deepcopy(command), label))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def capture(self, database: str) -> Iterator[list[Captured]]:
        seen: list[Captured] = []
        with self._lock:
            assert self._sink is None, "captures do not nest"
            self._sink, self._database = seen, database
        try:
            yield seen
        finally:
            with self._lock:
                self._sink, self._database, self.label = None, None, ""

    def phase(self, label: str) -> None:
        """Tag the commands recorded from now on (for the messages and the explain artifact)."""
        with self._lock:
            self.label = label


RECORDER = Recorder()
monitoring.register(RECORDER)

capture = RECORDER.capture
phase = RECORDER.phase


async def server_indexes(database: Any, collections: set[str]) -> dict[str, list[Index]]:
    """Each collection's indexes as the server lists them (after init_beanie created them)."""
    found = {}
    for name in sorted(collections):
        infos = await database[name].list_indexes().to_list(None)
        found[name] = [Index.from_info(info) for info in infos]
    return found


def reads(captured: list[Captured]) -> list[tuple[Captured, Query]]:
    return [(c, q) for c in captured for q in c.queries()]


def verdicts(captured: list[Captured], indexes: dict[str, list[Index]]) -> list[tuple[Captured, Verdict]]:
    return [(c, check(q, indexes.get(q.collection, []))) for c, q in reads(captured)]


_EXPLAINED = ("find", "aggregate", "count", "distinct")
_KEYS = {"find": ("find", "filter", "sort", "projection", "limit", "skip", "hint"),
         "aggregate": ("aggregate", "pipeline", "cursor", "hint"),
         "count": ("count", "query", "limit", "skip", "hint"),
         "distinct": ("distinct", "key", "query")}


async def explain_reads(database: Any, checked: list[tuple[Captured, Verdict]]) -> list[dict[str, Any]]:
    """The server's queryPlanner explain of each distinct read (information only; errors are kept as text)."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for captured, verdict in checked:
        if captured.name not in _EXPLAINED:
            continue
        command = {k: captured.command[k] for k in _KEYS[captured.name] if k in captured.command}
        if captured.name == "aggregate":
            command.setdefault("cursor", {})
        key = json_util.dumps(command)
        if key in seen:
            continue
        seen.add(key)
        entry: dict[str, Any] = {"phase": captured.label, "command": command, "rule": verdict.message()}
        try:
            answer = await database.command({"explain": command, "verbosity": "queryPlanner"})
            planner = answer.get("queryPlanner") or answer.get("stages", [{}])[0].get("$cursor", {}).get(
                "queryPlanner", {})
            entry["winningPlan"] = planner.get("winningPlan", answer)
            entry["server"] = _stages(entry["winningPlan"])
        except Exception as error:  # noqa: BLE001 - information only: the server may not explain this
            entry["error"] = f"{type(error).__name__}: {error}"[:300]
        entries.append(entry)
    return entries


def _stages(plan: Any) -> str:
    """SORT <- FETCH <- IXSCAN name: the winning plan in one line."""
    parts = []
    while isinstance(plan, Mapping) and plan:
        stage = str(plan.get("stage", "?"))
        if plan.get("indexName"):
            stage += f" {plan['indexName']}"
        parts.append(stage)
        inputs = plan.get("inputStages")
        plan = plan.get("inputStage") or (inputs[0] if inputs else None)
    return " <- ".join(parts)


def write_artifact(scenario: str, entries: list[dict[str, Any]]) -> Path:
    """Merge this scenario's explain entries into test-artifacts/index-explain.json, and print a summary."""
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    try:
        current = json.loads(ARTIFACT.read_text())
    except (OSError, ValueError):
        current = {}
    current[scenario] = json.loads(json_util.dumps(entries, json_options=json_util.RELAXED_JSON_OPTIONS))
    ARTIFACT.write_text(json.dumps(current, indent=1, sort_keys=True))
    print(f"\n[{scenario}] server explain (information only), written to {ARTIFACT}:")
    for entry in entries:
        first = entry["rule"].splitlines()[0]
        print(f"  {entry.get('phase') or '-'}: {first[:160]}\n      server plan: {entry.get('server') or entry.get('error')}")
    return ARTIFACT
