"""The etcd-shaped key-value interface every storage backend implements.

This is the only contract between the API server and its data. It is shaped
after etcd v3 (and kine's ``server.Backend``), because etcd is what upstream
runs on and because its model is what the API's semantics are built from:

* one global, strictly increasing **revision** for the whole keyspace; every
  successful write gets the next revision, and an object's resourceVersion is
  the revision of its last write (its ``mod_revision``);
* **create** succeeds only if the key is absent; **update** and **delete**
  may be guarded by the key's current ``mod_revision`` (compare-and-swap);
* **get** and **range** read the newest state or the state *at* an older
  revision, so a paginated list is a consistent snapshot;
* **watch** streams every change under a prefix *after* a revision, in
  revision order, exactly once;
* **compaction** forgets history up to a revision; reading or watching at a
  compacted revision fails with ``CompactedError`` (the API answers 410 Gone).

Keys are ``str`` (``/registry/pods/default/nginx``), values are opaque
``bytes`` (the encoded object, perhaps encrypted). Backends know nothing of
Kubernetes objects.

Backends: ``kajitori.storage.sqlite`` (embedded, the default) and
``kajitori.storage.etcd`` (a real etcd v3 cluster). Both pass the one
conformance suite in ``tests/storage/``, and both also offer ``WatchInto``
(batches handed to a callback, for the watch cache), with the parts of it
they share in ``kajitori.storage.sinks``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A key's value as of one revision.

    ``create_revision`` is the revision that created this incarnation of the
    key; ``mod_revision`` the revision of its last write (the object's
    resourceVersion).
    """

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change under a watched prefix.

    ``type`` is ``"PUT"`` for creates and updates (a create has
    ``kv.create_revision == kv.mod_revision``) and ``"DELETE"`` for deletes.
    For a delete, ``kv.mod_revision`` is the revision of the delete and
    ``kv.value`` is empty; ``prev_kv`` holds the value that was deleted.
    For updates ``prev_kv`` holds the previous value where the backend has it
    (both backends here always do).
    """

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class RangeResult:
    """A page of a range read.

    ``revision`` is the revision the page was read at (pass it back to read
    the next page from the same snapshot); ``more`` says whether keys remain
    after the last one returned; ``count`` is the total number of keys under
    the prefix at that revision (not just in this page).
    """

    kvs: list[KeyValue]
    revision: int
    more: bool
    count: int


class StorageError(Exception):
    """Base of every error a backend raises; the registry translates them once."""


class KeyExistsError(StorageError):
    """``create`` found the key already present."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    """``update``/``delete``/``get`` found no such key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflictError(StorageError):
    """A guarded write found another ``mod_revision`` than the caller expected.

    ``current`` is the key's present value, so the caller can retry without
    another read (as etcd's failed transaction returns it).
    """

    def __init__(self, key: str, current: KeyValue) -> None:
        super().__init__(f"revision conflict on {key}: now at {current.mod_revision}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    """The revision asked for has been compacted away.

    ``compact_revision`` is the oldest revision still readable.
    """

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"required revision {requested} has been compacted (oldest {compact_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StorageError):
    """The revision asked for is newer than the store's current revision."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"required revision {requested} is a future revision (current {current})")
        self.requested = requested
        self.current = current


class Backend(Protocol):
    """An etcd-shaped revisioned key-value store.

    All methods are coroutines and safe to call concurrently from one event
    loop. ``revision=0`` always means "the newest".
    """

    async def start(self) -> None:
        """Open files or connections; called once before any other method."""

    async def close(self) -> None:
        """Flush and release everything; pending watches end."""

    async def current_revision(self) -> int:
        """The revision of the newest write (0 for an empty, new store)."""

    async def compacted_revision(self) -> int:
        """The newest revision that has been compacted (0 if none)."""

    async def get(self, key: str, *, revision: int = 0) -> tuple[int, KeyValue | None]:
        """Read one key at ``revision``; returns (revision read at, value or None).

        Raises ``CompactedError`` / ``FutureRevisionError`` for unreadable revisions.
        """

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        """List keys starting with ``prefix`` in key order, at ``revision``.

        Only keys strictly greater than ``start_after`` are returned (for
        continuation); ``limit`` 0 means no limit.
        """

    async def count(self, prefix: str) -> tuple[int, int]:
        """(current revision, number of live keys under ``prefix``)."""

    async def create(self, key: str, value: bytes) -> int:
        """Create ``key`` if absent; returns the new revision. Raises ``KeyExistsError``."""

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        """Replace ``key``'s value if its ``mod_revision`` equals ``expected_revision``.

        ``expected_revision=0`` means unconditionally (the key must still
        exist). Returns the new revision. Raises ``KeyNotFoundError`` or
        ``RevisionConflictError``.
        """

    async def delete(self, key: str, *, expected_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete ``key``, guarded like ``update``; returns (revision, deleted value)."""

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[Event]]:
        """Stream batches of events under ``prefix`` with revision > ``after_revision``.

        Events arrive in revision order, each exactly once. Raises
        ``CompactedError`` (on the first ``__anext__``) if ``after_revision``
        is older than the compacted revision. Closing the iterator
        (``aclose``) stops the watch.
        """

    async def compact(self, revision: int) -> None:
        """Forget history up to and including ``revision`` (keeping live values)."""


# A ``watch_into`` consumer: what takes each batch, and what hears the watch's end.
Deliver = Callable[[list[Event]], None]
End = Callable[[BaseException | None], None]


class WatchInto(Protocol):
    """A backend whose watches can hand their batches to a callback (both backends here)."""

    def watch_into(
        self, prefix: str, *, after_revision: int, deliver: Deliver, end: End
    ) -> Callable[[], None]:
        """``watch``'s batches handed to ``deliver`` on the loop as they arrive.

        For a consumer that works on each batch at once (the watch cache): a
        live batch reaches it in the loop callback where the backend learns
        of it, not a loop turn later in a task of its own. Same order and
        exactly-once delivery as ``watch``. ``end`` is called once, with the
        error that ended the watch or None (the backend closed); a
        ``deliver`` that raises ends the watch with its error. Returns a
        function that stops the watch (``end`` is then not called).
        """
