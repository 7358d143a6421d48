"""Correctness shims for mongomock, the opt-in in-process quick lane (``INBOX_MONGODB_URL=mongomock://``).

Only where mongomock would answer differently from MongoDB on what the product does; no speed work
(the product runs on MongoDB, and the tests on a MongoDB-wire-protocol server):

- ``create_indexes()`` keeps ``partialFilterExpression`` on unique indexes (mongomock drops it, so the
  partial unique index on Message.wamid would refuse a second message without a wamid);
- the unique check honours that filter;
- a cursor left half-read (a task cancelled mid-iteration) must not hold the collection's lock;
- pymongo 4.11+ passes ``sort`` to bulk updates, which mongomock's builder predates.

And GridFS, which motor's bucket cannot run on mongomock: ``gridfs_bucket()`` puts pymongo's own
synchronous bucket (the same GridFS code and layout) over mongomock's database.
"""

from __future__ import annotations

from typing import Any


def patch_mongomock() -> None:
    """Install the shims once per process."""
    from mongomock.collection import Collection

    if getattr(Collection, "_inbox_patched", False):
        return
    Collection.create_indexes = _create_indexes
    Collection._ensure_uniques = _make_ensure_uniques(Collection._ensure_uniques)
    _accept_new_bulk_arguments()
    _snapshot_documents()
    Collection._inbox_patched = True


def _snapshot_documents() -> None:
    """mongomock yields a collection's documents while holding its lock: take the snapshot under the
    lock and iterate it outside, so a cursor left half-read blocks no later write."""
    from mongomock.store import CollectionStore

    def documents(self: Any) -> Any:
        self._remove_expired_documents()
        with self._rwlock.reader():
            snapshot = list(self._documents.values())
        return (document for document in snapshot)  # a generator: create_index() calls .throw() on it

    CollectionStore.documents = property(documents)


def _accept_new_bulk_arguments() -> None:
    from mongomock.collection import BulkOperationBuilder

    for name in ("add_update", "add_replace"):
        original = getattr(BulkOperationBuilder, name)

        def tolerant(self: Any, *args: Any, _original: Any = original, sort: Any = None, **kwargs: Any) -> Any:
            if sort:
                raise NotImplementedError("mongomock: sort in bulk updates")
            return _original(self, *args, **kwargs)

        setattr(BulkOperationBuilder, name, tolerant)


def _create_indexes(self: Any, indexes: Any, session: Any = None) -> list[str]:
    names = []
    for index in indexes:
        spec = index.document
        name = spec.get("name")
        if name in self._store.indexes:
            names.append(name)  # init_beanie declaring it again
            continue
        partial = spec.get("partialFilterExpression")
        unique = spec.get("unique", False)
        created = self.create_index(
            spec["key"].items(), session=session, expireAfterSeconds=spec.get("expireAfterSeconds"),
            # mongomock checks existing documents for uniqueness ignoring the partial filter:
            # create it plain, then mark it unique (the check below honours the filter).
            unique=unique and partial is None, sparse=spec.get("sparse", False),
            partialFilterExpression=partial, name=name,
        )
        if unique and partial is not None:
            self._store.indexes[created]["unique"] = True
        names.append(created)
    return names


def _make_ensure_uniques(original: Any) -> Any:
    from mongomock import helpers
    from pymongo.errors import DuplicateKeyError

    def _ensure_uniques(self: Any, new_data: Any) -> None:
        plain = {name: index for name, index in self._store.indexes.items()
                 if not (index.get("unique") and index.get("partialFilterExpression") is not None)}
        partial = {name: index for name, index in self._store.indexes.items() if name not in plain}
        saved = self._store.indexes
        try:
            self._store.indexes = plain
            original(self, new_data)
        finally:
            self._store.indexes = saved
        for index in partial.values():
            find: dict[str, Any] = {}
            for field, _ in index["key"]:
                try:
                    find[field] = helpers.get_value_by_dot(new_data, field)
                except KeyError:
                    find[field] = None
            query = {"$and": [index["partialFilterExpression"], find]}
            if len(list(self._iter_documents(query))) > 1:
                raise DuplicateKeyError("E11000 Duplicate Key Error", 11000)

    return _ensure_uniques


def gridfs_bucket(database: Any, bucket_name: str) -> Any:
    """The media store's bucket in the quick lane: the async methods it calls, on pymongo's sync bucket.

    ``database`` is mongomock-motor's database; the calls run in this process and do no I/O, so
    running them on the event loop blocks it no longer than any other mongomock call.
    """
    import gridfs
    from mongomock.gridfs import enable_gridfs_integration

    enable_gridfs_integration()  # lets pymongo's gridfs take mongomock's collections
    return _AsyncBucket(gridfs.GridFSBucket(database.delegate, bucket_name=bucket_name))


class _AsyncBucket:
    def __init__(self, bucket: Any) -> None:
        self._bucket = bucket

    def open_upload_stream_with_id(self, *args: Any, **kwargs: Any) -> _AsyncGridIn:
        return _AsyncGridIn(self._bucket.open_upload_stream_with_id(*args, **kwargs))

    async def open_download_stream(self, file_id: Any) -> _AsyncGridOut:
        return _AsyncGridOut(self._bucket.open_download_stream(file_id))

    async def delete(self, file_id: Any) -> None:
        self._bucket.delete(file_id)


class _AsyncGridIn:
    def __init__(self, grid_in: Any) -> None:
        self.delegate = grid_in  # motor's name for the pymongo GridIn it wraps

    async def write(self, data: Any) -> None:
        self.delegate.write(data)

    async def __aenter__(self) -> _AsyncGridIn:
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return self.delegate.__exit__(*exc)


class _AsyncGridOut:
    def __init__(self, grid_out: Any) -> None:
        self._grid_out = grid_out

    async def readchunk(self) -> bytes:
        return self._grid_out.readchunk()
