"""The layers, read from the source (ast): handlers stay thin, services know nothing of the web.

- A handler module (a Litestar controller or route: it defines routes) never queries or writes
  MongoDB itself: no ``get_motor_collection()``, and no query or write method called on a Document
  class or instance (``Conversation.get_scoped(...)``, ``message.save()``...). It parses, authorises,
  makes one service call and renders; the service is what the inbox, the API and the workers share.
- A service module never imports Litestar (services run in workers, where there is no request).
- ``app/whatsapp/`` imports nothing of ours: tests/unit/test_wa_isolation.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ROOT / "app" / "domains"

ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "route", "websocket"}
QUERY_METHODS = {"get_motor_collection", "find", "find_one", "find_all", "find_many", "get", "get_scoped", "scoped",
                 "find_one_scoped", "insert", "insert_one", "insert_many", "save", "replace", "delete", "delete_all",
                 "update", "update_many", "set", "count", "aggregate", "sync", "upsert"}
SERVICE_NAMES = ("services.py", "service.py")


def _documents() -> set[str]:
    """Names of our Beanie Document classes (anything deriving from Document or WorkspaceDocument)."""
    names = {"Document", "WorkspaceDocument"}
    trees = [ast.parse(path.read_text()) for path in (ROOT / "app").rglob("*.py")]
    changed = True
    while changed:
        changed = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names and any(
                        isinstance(b, ast.Name) and b.id in names for b in node.bases):
                    names.add(node.name)
                    changed = True
    return names - {"Document", "WorkspaceDocument"}


def _is_handler_module(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
                if name in ROUTE_DECORATORS:
                    return True
    return False


def _annotated_documents(tree: ast.Module, documents: set[str]) -> set[str]:
    """Local names bound to documents by an annotation (``conversation: Conversation``) in this module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and isinstance(node.annotation, ast.Name) and node.annotation.id in documents:
            names.add(node.arg)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(
                node.annotation, ast.Name) and node.annotation.id in documents:
            names.add(node.target.id)
    return names


def _database_calls(path: Path, documents: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    if not _is_handler_module(tree):
        return []
    instances = _annotated_documents(tree, documents)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, owner = node.func.attr, node.func.value
        if method == "get_motor_collection":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} get_motor_collection()")
        elif method in QUERY_METHODS and isinstance(owner, ast.Name) and (owner.id in documents or owner.id in instances):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner.id}.{method}()")
    return found


def test_handlers_never_query_or_write_the_database_themselves():
    documents = _documents()
    assert {"Conversation", "Message", "WhatsAppAccount", "Contact", "User"} <= documents
    found = [call for path in sorted(DOMAINS.rglob("*.py")) for call in _database_calls(path, documents)]
    assert found == [], "handlers must call a service:\n" + "\n".join(found)


def test_services_never_import_litestar():
    found = []
    for path in sorted(DOMAINS.rglob("*.py")):
        if path.name not in SERVICE_NAMES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m == "litestar" or m.startswith("litestar.") for m in modules):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "services must not depend on the web framework:\n" + "\n".join(found)


def test_the_rule_sees_a_handler_that_queries():
    """The checker itself: a route that reads a Document directly is reported."""
    source = ("from litestar import get\n"
              "@get('/x')\n"
              "async def x(conversation_id: str) -> None:\n"
              "    await Conversation.get_scoped(1, conversation_id)\n")
    probe = ROOT / "tests" / "unit" / "_layers_probe.py"
    probe.write_text(source)
    try:
        assert _database_calls(probe, {"Conversation"}) == ["tests/unit/_layers_probe.py:4 Conversation.get_scoped()"]
    finally:
        probe.unlink()


# Beanie for queries (issue 13); motor's collection only where a reason is written here. Per
# message on the paths bench/*.py counts, a raw read with a projection, validated once, costs less
# CPU than Beanie's query objects; some operations have no Beanie form at all.
RAW_MOTOR = {
    "app/domains/inbox/queries.py": "the inbox list, search and thread per page and per live event (bench/live.py)",
    "app/domains/live/feed.py": "each live event read once per web process, validated once (bench/live.py)",
    "app/domains/webhooks/ingest.py": "per webhook: find_one_and_update of the stored body, bulk writes (bench/webhooks.py)",
    "app/domains/messages/ingest.py": "per inbound message: bulk upserts (bench/webhooks.py)",
    "app/domains/messages/status.py": "per status: one conditional update that only moves forward (2 operations)",
    "app/domains/outbox/drainer.py": "per send: messages read back after a hand-over, with a projection",
    "app/domains/outbox/acceptance.py": "per batch of sends: one bulk_write",
    "app/domains/outbox/service.py": "retry_failed: ids only (projection) over a number's failures",
    "app/domains/outbox/sweeper.py": "the sweep reads thousands of queued messages' ids (projection)",
    "app/domains/conversations/services.py": "update pipelines ($cond on the stored status), a $lookup aggregate, "
                                             "a batch's upserts and previews as bulk_writes",
    "app/domains/conversations/search.py": "the search-token backfill: projected scans and bulk writes",
    "app/domains/contacts/services.py": "an upsert returning the document (find_one_and_update with $setOnInsert)",
    "app/domains/contacts/directory.py": "erasure: projected scan of stored webhook bodies",
    "app/domains/contacts/consent.py": "per STOP / START: one update conditioned on the history (applied once)",
    "app/domains/contacts/duplicates.py": "one projected scan of a workspace's contacts",
    "app/domains/contacts/merge.py": "steps applied once (conditional updates, pipelines, $push $sort), update_many",
    "app/domains/contacts/bulk.py": "bulk actions: projected _id scans in batches, one update_many per batch",
    "app/domains/contact_files/importing.py": "per import batch: one projected find, one bulk_write, conditional "
                                                "checkpoints and lease claims (find_one_and_update) (bench/contacts.py)",
    "app/domains/contact_files/imports.py": "starting and cancelling an import: one conditional find_one_and_update",
    "app/domains/contact_files/exporting.py": "exports: projected keyset pages of raw documents, a count with a limit",
    "app/domains/contact_files/export_jobs.py": "export slices: lease claims (find_one_and_update), checkpoints",
    "app/domains/webhooks/services.py": "projected scans of stored webhook bodies (sweep, admin problems list)",
    "app/domains/webhooks/updates.py": "$push with $slice, guarded against applying an update twice",
    "app/domains/analytics/services.py": "aggregation pipelines",
    "app/domains/reports/rollups.py": "projected reads of an hour's messages, bulk replace of its rollups, a lease",
    "app/domains/reports/rows.py": "projected cursors of a period's messages, a distinct of their conversations",
    "app/domains/reports/agents.py": "a projected read of the period's InboxMinutes (their minute lists only)",
    "app/metrics.py": "each scrape reads the numbers' health and each one's oldest queued message (projections)",
    "app/domains/reports/backlog.py": "a grouped count of the open conversations, an upsert of its sample, samples "
                                      "read by time with their counts only",
    "app/domains/assignment/presence.py": "an $addToSet upsert of a heartbeat hour's minutes, every minute per user",
    "app/domains/media/store.py": "GridFS's own collections (motor's bucket)",
    "app/domains/system/embedded_size.py": "estimated_document_count (Beanie only counts exactly)",
    "app/domains/workflows/engine.py": "a run's lease claim and a reply handed to a waiting run: find_one_and_update",
    "app/domains/workflows/triggers.py": "timers: find_one_and_delete of the next due one, upserts with $setOnInsert",
    "app/domains/workflows/services.py": "runs in progress per workflow: one $group aggregate",
    "app/domains/broadcasts/audience.py": "freezing: a projected scan of the audience, insert_many of recipients",
    "app/domains/broadcasts/sending.py": "a slice's lease claim: find_one_and_update; a batch's claim (update_many, "
                                         "read back by its token) and its recipients' marks in one bulk_write",
    "app/domains/broadcasts/services.py": "progress: $group aggregates of recipients and messages",
}


def test_raw_collection_access_only_where_a_reason_is_written():
    using = {str(path.relative_to(ROOT)) for path in (ROOT / "app").rglob("*.py")
             if "get_motor_collection()" in path.read_text()}
    assert using - RAW_MOTOR.keys() == set(), "use Beanie, or write the reason in RAW_MOTOR"
    assert RAW_MOTOR.keys() - using == set(), "no longer raw: drop it from RAW_MOTOR"
