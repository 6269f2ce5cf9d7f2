"""The generic store: get, list, create, update, delete and watch for any kind.

One ``Store`` serves one resource (a ``ResourceInfo``) over a storage
``Backend``. It knows no kinds: every kind-specific decision is a strategy
hook, and the order of those hooks lives in ``registry.generic.hooks``
(upstream: k8s.io/apiserver/pkg/registry/generic/registry/store.go).

What lives here:

* storage keys (``/registry/<resource>/<namespace>/<name>``) and the codec
  (objects are stored as JSON without ``metadata.resourceVersion``; the
  resourceVersion *is* the key's ``mod_revision``, as upstream's etcd3 store);
* optimistic concurrency: updates are compare-and-swap on the revision the
  caller read; a stale resourceVersion is a 409 Conflict with upstream's
  message; unconditional updates and patches retry on races
  (``guaranteed_update``);
* consistent pagination (``limit``/``continue`` read one snapshot revision),
  label and field selectors, and 410 Gone for compacted revisions;
* graceful deletion, finalizers and ``deletionTimestamp``, deletion
  preconditions and the propagation policy finalizers the garbage collector
  reads;
* watch: storage events turned into ADDED/MODIFIED/DELETED for one
  namespace and selector, served by the resource's shared watch cache
  (``registry.generic.cacher``) when it holds the revisions asked for, else
  by a storage watch of its own.

Storage errors are translated to API errors here and only here
(``_translate``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from kajitori.machinery import errors
from kajitori.machinery import names as namegen
from kajitori.registry.generic import cacher, hooks, initialization
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.uids import _UID_BATCH, new_uid  # noqa: F401  (re-exported)
from kajitori.registry.resource import ResourceInfo, Rollback
from kajitori.storage import interface as storage

Object = dict[str, Any]
Mutation = Callable[[Object], Awaitable[Object]]

CONTINUE_EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the "
    "provided token results in an inconsistent list - objects that were created, modified, "
    "or deleted between the time the first chunk was returned and now may show up in the list."
)

LIST_EXPIRED_MESSAGE = "The resourceVersion for the provided list is too old."

# How many keys one storage read fetches while filtering a selector-limited list.
_LIST_CHUNK = 500
# Encoded GET responses kept per key while the object is unchanged (its
# resourceVersion the same): a read then costs the storage read alone, not a
# decode and a re-encode. Bounded by bytes; large objects are not kept.
_ENCODED_CACHE_BYTES = 8 * 1024 * 1024
_ENCODED_CACHE_MAX_OBJECT = 64 * 1024
# Plain GET answers kept per store (``get_json``; no larger than the above):
# their bytes are mostly the encoded cache's.
_READS_MAX = 2048
_GUARANTEED_UPDATE_ATTEMPTS = 32
_NAME_GENERATION_ATTEMPTS = 8  # upstream's maxNameGenerationCreateAttempts
_UNSET = object()
# A watch's initial state (resourceVersion unset or "0") goes out in lists of this many events.
_INITIAL_BATCH = 500


class Transformer(Protocol):
    """Turns stored bytes to and from what the backend keeps (encryption at rest)."""

    def to_storage(self, data: bytes, key: str) -> bytes: ...

    def from_storage(self, data: bytes, key: str) -> bytes: ...


class IdentityTransformer:
    def to_storage(self, data: bytes, key: str) -> bytes:
        return data

    def from_storage(self, data: bytes, key: str) -> bytes:
        return data


class Selection(Protocol):
    """A label or field selector as parsed by ``kajitori.machinery``."""

    def matches(self, values: Any) -> bool: ...


@dataclass(slots=True)
class ListOptions:
    label_selector: Selection | None = None
    field_selector: Selection | None = None
    # Field names the field selector refers to (validated by the caller).
    field_names: tuple[str, ...] = ()
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    # A watch's sendInitialEvents (None: unset, the resourceVersion decides).
    send_initial_events: bool | None = None


@dataclass(slots=True)
class ListResult:
    items: list[Object]
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(slots=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str = ""
    orphan_dependents: bool | None = None
    preconditions_uid: str = ""
    preconditions_resource_version: str = ""


@dataclass(slots=True)
class DeleteResult:
    """The object as last seen, and whether it is gone (False: pending finalizers or grace)."""

    obj: Object
    deleted: bool


@dataclass(slots=True)
class WatchEvent:
    """One event of an API watch. The watch cache shares it among watchers: never mutate it."""

    type: str
    object: Object
    revision: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    _line: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def json_line(self) -> bytes:
        """``{"type": ..., "object": ...}`` and a newline, encoded on first use, then kept.

        Every watcher the cache hands this event to sends the same bytes.
        """
        if self._line is None:
            self._line = orjson.dumps({"type": self.type, "object": self.object}) + b"\n"
        return self._line


class DecodedEvent:
    """A storage event whose objects are decoded on first use and then kept.

    ``current`` is the object after a create or update. ``previous`` is the
    object before an update or delete, stamped with the event's revision: a
    DELETED event (a delete, or an update that takes the object out of a
    watcher's selection) carries the last content at the revision of the
    change, as upstream's watch cache does. ``view(type)`` is the
    ``WatchEvent`` of one type, built once. The watch cache shares one
    ``DecodedEvent`` among all its watchers, so none of this may be mutated.
    """

    __slots__ = (
        "_current",
        "_decode",
        "_fields",
        "_prev_fields",
        "_previous",
        "_prior",
        "_unfiltered",
        "_views",
        "event",
    )

    def __init__(
        self, event: storage.Event, decode: Callable[[storage.KeyValue, int], Object]
    ) -> None:
        self.event = event
        self._decode = decode
        self._current: Object | None = None
        self._previous: Object | None = None
        # The event that wrote the value ``prev_kv`` holds, when the watch
        # cache still had it (``follow``): ``previous`` is then made from its
        # object instead of decoding ``prev_kv`` again.
        self._prior: DecodedEvent | None = None
        self._views: dict[str, WatchEvent] = {}
        self._unfiltered: WatchEvent | object | None = _UNSET
        # Selectable field values of ``current`` / ``previous`` (``fields``):
        # the field names they were worked out for, and the values.
        self._fields: tuple[tuple[str, ...], dict[str, str]] | None = None
        self._prev_fields: tuple[tuple[str, ...], dict[str, str]] | None = None

    @property
    def revision(self) -> int:
        return self.event.revision

    @property
    def current(self) -> Object:
        if self._current is None:
            self._current = self._decode(self.event.kv, self.event.revision)
        return self._current

    @property
    def previous(self) -> Object:
        """Only for events with a ``prev_kv`` (``Store.event_type`` checks)."""
        if self._previous is None:
            prior = self._prior
            if prior is not None:
                self._prior = None
                self._previous = _restamped(prior.current, self.event.revision)
                if self._prev_fields is None:
                    self._prev_fields = prior._fields
            else:
                assert self.event.prev_kv is not None
                self._previous = self._decode(self.event.prev_kv, self.event.revision)
        return self._previous

    def fields(self, previous: bool, names: tuple[str, ...]) -> dict[str, str] | None:
        """The values of the selectable fields ``names`` of one side, if known (``keep_fields``).

        Upstream's watch cache keeps each object's fields with its event for
        the same reason: every watcher selecting on them asks, and an update's
        previous side is the object of the event before it. The previous side
        takes the prior event's values (``follow``) unless they may name the
        resourceVersion, the one thing that differs between the two.
        """
        kept = self._prev_fields if previous else self._fields
        if kept is None and previous and self._prior is not None:
            kept = self._prior._fields  # ``previous`` not made yet: its values are the prior's
        if kept is None or kept[0] != names:
            return None
        if previous and any("resourceVersion" in name for name in names):
            return None
        return kept[1]

    def keep_fields(self, previous: bool, names: tuple[str, ...], values: dict[str, str]) -> None:
        """Remember one side's field values for ``names`` (shared: never mutate ``values``)."""
        if previous:
            self._prev_fields = (names, values)
        else:
            self._fields = (names, values)

    def decoded(self) -> Object | None:
        """``current`` if a watcher already needed it, else None (decodes nothing)."""
        return self._current

    def follow(self, prior: DecodedEvent) -> None:
        """``prior`` wrote the value this event's ``prev_kv`` holds (same key and revision).

        Its object is this event's ``previous`` but for the resourceVersion:
        a watcher with selectors tests every update against the object
        before it, which would otherwise be decoded twice (once as
        ``prior``'s, once as ``prev_kv``). ``prior`` lets go of its own
        prior, so that events never hold a chain of older ones alive.
        """
        prev_kv = self.event.prev_kv
        if prev_kv is not None and prior.event.kv.mod_revision == prev_kv.mod_revision:
            self._prior = prior
            prior._prior = None

    def kept(self) -> DecodedEvent:
        """What the watch cache keeps of its key's newest event once it left the ring.

        The value (no ``prev_kv``) and the field values worked out for it, if
        any: nothing decoded, so that keeping thousands of them stays cheap.
        """
        event = self.event
        light = DecodedEvent(storage.Event(event.type, event.kv, None), self._decode)
        light._fields = self._fields
        return light

    def follow_kept(self, prior: DecodedEvent) -> None:
        """``follow`` for a ``kept`` prior: only its field values become ``previous``'s."""
        prev_kv = self.event.prev_kv
        if prev_kv is not None and prior.event.kv.mod_revision == prev_kv.mod_revision:
            self._prev_fields = prior._fields

    def unfiltered_view(
        self, event_type: Callable[[DecodedEvent, Any], str | None], opts: Any
    ) -> WatchEvent | None:
        """What a watcher without selectors sees (``event_type`` with such ``opts``), once."""
        if self._unfiltered is _UNSET:
            kind = event_type(self, opts)
            self._unfiltered = None if kind is None else self.view(kind)
        return self._unfiltered  # type: ignore[return-value]

    def view(self, type_: str) -> WatchEvent:
        event = self._views.get(type_)
        if event is None:
            obj = self.previous if type_ == "DELETED" else self.current
            event = self._views[type_] = WatchEvent(type_, obj, self.event.revision)
        return event


def _restamped(obj: Object, revision: int) -> Object:
    """``obj`` at ``revision``: new top and metadata dicts, everything below shared (read-only)."""
    copy = dict(obj)
    meta = copy["metadata"] = dict(obj["metadata"])
    meta["resourceVersion"] = str(revision)
    return copy


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Serves one resource kind over one storage backend."""

    def __init__(
        self,
        info: ResourceInfo,
        backend: storage.Backend,
        *,
        transformer: Transformer | None = None,
        admission: hooks.Admission | None = None,
        watch_cache: cacher.Options | None = cacher.DEFAULT_OPTIONS,
    ) -> None:
        """``watch_cache`` sizes the resource's shared watch cache; None: every watch reads storage."""
        self.info = info
        self.backend = backend
        self.transformer = transformer or IdentityTransformer()
        self.admission = admission or hooks.NO_ADMISSION
        self.prefix = info.storage_prefix()
        self.gr = info.group_resource
        self.watch_cache_options = watch_cache
        self._watch_cache: cacher.WatchCache | None = None
        self._encoded: dict[str, tuple[int, bytes]] = {}
        # Keys whose bytes in ``_encoded`` lack kind or apiVersion (rare): a
        # list does not show those bytes (``list_item_json``).
        self._encoded_unlistable: set[str] = set()
        # Plain GETs' answers by key, with the backend's read generation then.
        # What a GET answered per key (None: not found), with the backend's read generation.
        self._reads: dict[str, tuple[int, bytes | None]] = {}
        self._encoded_bytes = 0
        # The revision of this store's newest write through this process: a
        # reader of a watch (an admission plugin's lister) that has not seen
        # it yet reads storage instead.
        self.written_revision = 0
        # Set once the watch cache decoded a stored object without kind or
        # apiVersion (it fills them in): its objects then no longer read as
        # the stored ones (``cached_for_update``).
        self._filled_kind = False
        self._extractors: Mapping[str, Callable[[Object], str]] | None = None

    # ----- keys and codec -------------------------------------------------

    def key(self, namespace: str, name: str) -> str:
        if self.info.namespaced:
            return f"{self.prefix}{namespace}/{name}"
        return f"{self.prefix}{name}"

    def list_prefix(self, namespace: str) -> str:
        if self.info.namespaced and namespace:
            return f"{self.prefix}{namespace}/"
        return self.prefix

    def encode(self, obj: Object, key: str) -> bytes:
        meta = obj.get("metadata", {})
        rv = meta.pop("resourceVersion", None)
        try:
            data = orjson.dumps(obj)
        finally:
            if rv is not None:
                meta["resourceVersion"] = rv
        return self.transformer.to_storage(data, key)

    def decode(self, kv: storage.KeyValue) -> Object:
        obj: Object = orjson.loads(self.transformer.from_storage(kv.value, kv.key))
        obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
        return obj

    # ----- reads ----------------------------------------------------------

    async def get(self, namespace: str, name: str) -> Object:
        return self.decode(await self._get_kv(namespace, name))

    async def get_json(self, namespace: str, name: str) -> bytes:
        """``get``'s object as JSON bytes; reused while its resourceVersion is unchanged."""
        key = self.key(namespace, name)
        # A backend that alone writes its data (SQLite) tells whether the key
        # saw a write since the last read: then no read of storage at all.
        generation_of = getattr(self.backend, "read_generation", None)
        generation = None if generation_of is None else generation_of(key)
        if generation is not None:
            read = self._reads.get(key)
            if read is not None and read[0] == generation:
                if read[1] is None:
                    raise errors.not_found(self.gr, name)
                return read[1]
        # ``_get_kv`` inlined: one coroutine fewer on every plain GET.
        try:
            _, kv = await self.backend.get(key)
        except storage.StorageError as exc:
            raise self._translate(exc, name) from exc
        if kv is None:
            # An absence is remembered too: controllers probe for objects they may create.
            if generation is not None:
                self._remember_read(key, generation, None)
            raise errors.not_found(self.gr, name)
        cached = self._encoded.get(kv.key)
        if cached is not None and cached[0] == kv.mod_revision:
            data = cached[1]
        else:
            obj = self.decode(kv)
            data = orjson.dumps(obj)
            self._remember_encoded(
                kv.key, kv.mod_revision, data, "kind" in obj and "apiVersion" in obj
            )
        if generation is not None and len(data) <= _ENCODED_CACHE_MAX_OBJECT:
            self._remember_read(key, generation, data)
        return data

    def _remember_read(self, key: str, generation: int, data: bytes | None) -> None:
        if len(self._reads) >= _READS_MAX:
            self._reads.clear()
        self._reads[key] = (generation, data)

    def list_item_json(self, kv: storage.KeyValue) -> bytes:
        """The JSON of ``kv``'s object as a list shows it: with its kind and apiVersion.

        The bytes ``get_json`` answers when the stored object names both (as
        every object this store wrote does), so a list and a get share them
        while the object is unchanged; otherwise the list's own, not kept.
        """
        cached = self._encoded.get(kv.key)
        if (
            cached is not None
            and cached[0] == kv.mod_revision
            and kv.key not in self._encoded_unlistable
        ):
            return cached[1]
        obj = self.decode(kv)
        if "kind" in obj and "apiVersion" in obj:
            data = orjson.dumps(obj)
            self._remember_encoded(kv.key, kv.mod_revision, data, True)
            return data
        # As the list handler's setdefault: appended after the object's own keys.
        obj.setdefault("kind", self.info.kind)
        obj.setdefault("apiVersion", self.info.group_version)
        return orjson.dumps(obj)

    async def _get_kv(self, namespace: str, name: str) -> storage.KeyValue:
        try:
            _, kv = await self.backend.get(self.key(namespace, name))
        except storage.StorageError as exc:
            raise self._translate(exc, name) from exc
        if kv is None:
            raise errors.not_found(self.gr, name)
        return kv

    def _remember_encoded(self, key: str, revision: int, data: bytes, listable: bool) -> None:
        """Keep ``data`` for ``key`` at ``revision``; ``listable``: it names kind and apiVersion."""
        if len(data) > _ENCODED_CACHE_MAX_OBJECT:
            return
        old = self._encoded.pop(key, None)
        if old is not None:
            self._encoded_bytes -= len(old[1])
        while self._encoded and self._encoded_bytes + len(data) > _ENCODED_CACHE_BYTES:
            # The oldest entry first (dicts keep insertion order).
            oldest = next(iter(self._encoded))
            _, evicted = self._encoded.pop(oldest)
            self._encoded_bytes -= len(evicted)
            self._encoded_unlistable.discard(oldest)
        self._encoded[key] = (revision, data)
        self._encoded_bytes += len(data)
        if listable:
            self._encoded_unlistable.discard(key)
        else:
            self._encoded_unlistable.add(key)

    async def list(self, namespace: str, opts: ListOptions, *, as_json: bool = False) -> ListResult:
        """The objects of a page; ``as_json``: each item as its JSON bytes (``list_item_json``).

        ``as_json`` is for lists without selectors (the objects are not decoded).
        """
        prefix = self.list_prefix(namespace)
        start_after, revision, position = self._list_start(prefix, opts)
        items: list[Any] = []
        filtering = opts.label_selector is not None or opts.field_selector is not None
        if as_json and filtering:
            raise ValueError("a list with selectors has its items decoded")
        examined = 0
        total = 0
        more = False
        while True:
            want = opts.limit - len(items) if opts.limit else 0
            chunk = max(want, _LIST_CHUNK) if filtering and want else want
            try:
                page = await self.backend.range(
                    prefix, start_after=start_after, limit=chunk, revision=revision
                )
            except storage.StorageError as exc:
                raise self._translate_list(exc, opts) from exc
            revision, total = page.revision, page.count
            taken = 0
            for kv in page.kvs:
                taken += 1
                start_after = kv.key
                if as_json:
                    items.append(self.list_item_json(kv))
                else:
                    obj = self.decode(kv)
                    if not self.matches(obj, opts):
                        continue
                    items.append(obj)
                if opts.limit and len(items) >= opts.limit:
                    break
            examined += taken
            more = page.more or taken < len(page.kvs)
            if not opts.limit or len(items) >= opts.limit or not more:
                break
        result = ListResult(items=items, resource_version=str(revision))
        if opts.limit and more:
            position += examined
            result.continue_token = encode_continue(start_after[len(prefix) :], revision, position)
            if not filtering:
                result.remaining_item_count = max(total - position, 0)
        return result

    def _list_start(self, prefix: str, opts: ListOptions) -> tuple[str, int, int]:
        """Where a list starts: (key to start after, snapshot revision, keys before it)."""
        if opts.continue_token:
            start, revision, position = decode_continue(opts.continue_token)
            return prefix + start, revision, position
        if opts.resource_version_match == "Exact" and opts.resource_version:
            return "", parse_resource_version(opts.resource_version), 0
        return "", 0, 0

    def _translate_list(self, exc: storage.StorageError, opts: ListOptions) -> errors.StatusError:
        if isinstance(exc, storage.CompactedError):
            # Upstream's etcd3 interpretListError: a list (not a watch) names no revisions.
            if opts.continue_token:
                return errors.resource_expired(CONTINUE_EXPIRED_MESSAGE)
            return errors.resource_expired(LIST_EXPIRED_MESSAGE)
        return self._translate(exc, "")

    def matches(self, obj: Object, opts: ListOptions) -> bool:
        if opts.label_selector is not None:
            if not opts.label_selector.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
        if opts.field_selector is not None:
            return opts.field_selector.matches(self.field_values(obj, opts.field_names))
        return True

    def field_values(self, obj: Object, names: tuple[str, ...]) -> dict[str, str]:
        # ``info`` is frozen: its merged extractors are built once, not per object.
        extractors = self._extractors
        if extractors is None:
            extractors = self._extractors = self.info.all_selectable_fields
        return {n: extractors[n](obj) for n in names if n in extractors}

    # ----- writes ---------------------------------------------------------

    async def create(
        self, namespace: str, obj: Object, ctx: RequestContext, *, applied: bool = False
    ) -> Object:
        """``applied``: a server-side apply already set managedFields (hooks skip that step)."""
        rollbacks: list[Rollback] = []
        meta = obj.get("metadata")
        generated = (
            isinstance(meta, dict) and not meta.get("name") and bool(meta.get("generateName"))
        )
        try:
            obj = await hooks.before_create(self, namespace, obj, ctx, rollbacks, applied=applied)
            if ctx.dry_run:
                return obj
            revision = await self._create_kv(namespace, obj, generated)
        except BaseException:
            await _undo(rollbacks)
            raise
        self._written(revision)
        obj["metadata"]["resourceVersion"] = str(revision)
        return obj

    async def _create_kv(self, namespace: str, obj: Object, generated: bool) -> int:
        """Store the new object; a generated name that is taken is generated again.

        Upstream's RetryGenerateName (GA in 1.32): up to 8 attempts in all
        before the AlreadyExists of the last name is the answer. Only the
        name changes between attempts (nothing else derives from it here).
        """
        meta = obj["metadata"]
        for attempt in range(_NAME_GENERATION_ATTEMPTS):
            key = self.key(namespace, meta["name"])
            try:
                return await self.backend.create(key, self.encode(obj, key))
            except storage.KeyExistsError as exc:
                if not generated or attempt == _NAME_GENERATION_ATTEMPTS - 1:
                    raise self._translate(exc, meta["name"]) from exc
                meta["name"] = namegen.simple_name_generator(meta["generateName"])
            except storage.StorageError as exc:
                raise self._translate(exc, meta["name"]) from exc
        raise AssertionError("unreachable")

    def _written(self, revision: int) -> None:
        if revision > self.written_revision:
            self.written_revision = revision

    async def update(
        self,
        namespace: str,
        name: str,
        new: Object,
        ctx: RequestContext,
        *,
        subresource: str = "",
    ) -> tuple[Object, bool]:
        """PUT: replace the object; returns (stored object, created)."""
        strategy = hooks.strategy_for(self.info, subresource)
        precondition_rv = new.get("metadata", {}).get("resourceVersion", "")
        if not precondition_rv and not strategy.allow_unconditional_update():
            raise hooks.invalid_missing_resource_version(self.info, name)

        try:
            return await self.guaranteed_update(
                namespace,
                name,
                None,
                ctx,
                replacement=new,
                subresource=subresource,
                precondition_rv=precondition_rv,
                allow_create=strategy.allow_create_on_update(),
            )
        except errors.StatusError as exc:
            if exc.code == 404 and strategy.allow_create_on_update():
                return await self.create(namespace, new, ctx), True
            raise

    async def guaranteed_update(
        self,
        namespace: str,
        name: str,
        mutate: Mutation | None,
        ctx: RequestContext,
        *,
        subresource: str = "",
        precondition_rv: str = "",
        allow_create: bool = False,
        applied: bool = False,
        replacement: Object | None = None,
    ) -> tuple[Object, bool]:
        """Read, mutate, validate and compare-and-swap, retrying lost races.

        ``mutate`` gets a private copy of the current object and returns the
        desired one; a PUT passes ``replacement`` instead (the desired object
        whatever is stored, so no private copy is decoded for it). With
        ``precondition_rv`` a race is a 409 Conflict, not a retry (the client
        asked for that exact version).
        """
        key = self.key(namespace, name)
        # The first guess at the current object is the watch cache's (upstream's
        # cacher.GuaranteedUpdate passes it as cachedExistingObject): no storage
        # read for most updates. A guess that fails a precondition, fails the
        # update or leaves it unchanged is checked against storage first, as
        # upstream's origStateIsCurrent; one that lost a race is a conflict below.
        guess = not ctx.dry_run
        for _ in range(_GUARANTEED_UPDATE_ATTEMPTS):
            current_kv = self._cached_for_update(key) if guess else None
            guessed = current_kv is not None
            guess = False
            if current_kv is None:
                current_kv = await self._read_for_update(key, name)
            current = self.decode(current_kv)
            if precondition_rv and precondition_rv != current["metadata"]["resourceVersion"]:
                if guessed and await self._moved_on(key, name, current_kv):
                    continue
                raise errors.conflict(self.gr, name)
            rollbacks: list[Rollback] = []
            try:
                if mutate is None:
                    assert replacement is not None
                    desired = replacement
                else:
                    desired = await mutate(self.decode(current_kv))
                obj = await hooks.before_update(
                    self,
                    desired,
                    current,
                    ctx,
                    subresource=subresource,
                    rollbacks=rollbacks,
                    applied=applied,
                )
                if (hooks.unchanged(obj, current) and not self._stale(current_kv)) or ctx.dry_run:
                    await _undo(rollbacks)
                    if guessed and await self._moved_on(key, name, current_kv):
                        continue
                    return obj, False
                revision = await self.backend.update(
                    key, self.encode(obj, key), expected_revision=current_kv.mod_revision
                )
            except storage.RevisionConflictError:
                await _undo(rollbacks)
                if precondition_rv:
                    raise errors.conflict(self.gr, name) from None
                continue
            except errors.StatusError:
                await _undo(rollbacks)
                if guessed and await self._moved_on(key, name, current_kv):
                    continue
                raise
            except storage.StorageError as exc:
                await _undo(rollbacks)
                raise self._translate(exc, name) from exc
            except BaseException:
                await _undo(rollbacks)
                raise
            self._written(revision)
            obj["metadata"]["resourceVersion"] = str(revision)
            await self._release(current, obj)
            if hooks.should_delete_after_update(self.info, obj):
                await self._delete_now(namespace, name, obj)
            return obj, False
        raise errors.conflict(self.gr, name, "too many concurrent updates, please retry")

    def _stale(self, kv: storage.KeyValue) -> bool:
        """Whether ``kv`` is stored in an older format than writes now use.

        Upstream's etcd3 store writes such a no-op update anyway (its
        origState.stale): that is how a storage version migration re-encrypts
        a value with the encryption configuration's current key.
        """
        is_stale = getattr(self.transformer, "is_stale", None)
        return bool(is_stale is not None and is_stale(kv.value))

    def _cached_for_update(self, key: str) -> storage.KeyValue | None:
        """The watch cache's newest value of ``key``, if it has one (a guess: it may lag)."""
        cache = self._watch_cache
        if cache is None or cache.stopped:
            return None
        return cache.newest_value(key)

    def cached_for_update(self, key: str) -> tuple[storage.KeyValue, Object | None] | None:
        """``_cached_for_update``'s value and, if a watcher already decoded it, its object.

        The object is what ``decode`` of the value gives, but shared with the
        watch cache's watchers: read it, or copy what you change (never mutate
        it, nor ``encode`` it, which rewrites ``metadata``). None for the
        object when nobody decoded the value yet (decode it yourself, once).
        """
        cache = self._watch_cache
        if cache is None or cache.stopped:
            return None
        change = cache.newest(key)
        if change is None:
            return None
        obj = None if self._filled_kind else change.decoded()
        return change.event.kv, obj

    async def _moved_on(self, key: str, name: str, guess: storage.KeyValue) -> bool:
        """Whether storage holds a newer ``key`` than the cached ``guess`` (then: try again)."""
        return (await self._read_for_update(key, name)).mod_revision != guess.mod_revision

    async def _read_for_update(self, key: str, name: str) -> storage.KeyValue:
        try:
            _, kv = await self.backend.get(key)
        except storage.StorageError as exc:
            raise self._translate(exc, name) from exc
        if kv is None:
            raise errors.not_found(self.gr, name)
        return kv

    # ----- deletes --------------------------------------------------------

    async def delete(
        self, namespace: str, name: str, opts: DeleteOptions, ctx: RequestContext
    ) -> DeleteResult:
        key = self.key(namespace, name)
        for _ in range(_GUARANTEED_UPDATE_ATTEMPTS):
            kv = await self._read_for_update(key, name)
            current = self.decode(kv)
            hooks.check_delete_preconditions(self.info, current, opts)
            await self.admission.validate_delete(self, current, ctx, opts)
            plan = hooks.plan_delete(self.info, current, opts)
            if ctx.dry_run:
                return DeleteResult(
                    plan.updated or current, plan.updated is None or plan.then_delete
                )
            if plan.updated is None:
                try:
                    revision, _ = await self.backend.delete(key, expected_revision=kv.mod_revision)
                except storage.RevisionConflictError:
                    continue
                except storage.StorageError as exc:
                    raise self._translate(exc, name) from exc
                self._written(revision)
                await self._release(current)
                return DeleteResult(current, True)
            if plan.updated == current:
                return DeleteResult(current, False)
            try:
                revision = await self.backend.update(
                    key, self.encode(plan.updated, key), expected_revision=kv.mod_revision
                )
            except storage.RevisionConflictError:
                continue
            except storage.StorageError as exc:
                raise self._translate(exc, name) from exc
            self._written(revision)
            plan.updated["metadata"]["resourceVersion"] = str(revision)
            if plan.then_delete:
                await self._delete_marked(key, plan.updated)
            return DeleteResult(plan.updated, plan.then_delete)
        raise errors.conflict(self.gr, name, "too many concurrent updates, please retry")

    async def _delete_marked(self, key: str, marked: Object) -> None:
        """Delete ``marked``, just stored with a grace period of 0, whatever was written to
        it since (a kubelet's status), unless it is gone, another object now, or finalized."""
        uid = marked["metadata"].get("uid")
        for _ in range(_GUARANTEED_UPDATE_ATTEMPTS):
            try:
                _, kv = await self.backend.get(key)
                if kv is None:
                    return
                current = self.decode(kv)
                if current["metadata"].get("uid") != uid or current["metadata"].get("finalizers"):
                    return
                revision, _ = await self.backend.delete(key, expected_revision=kv.mod_revision)
            except storage.KeyNotFoundError:
                return  # another delete won the race, as upstream tolerates
            except storage.RevisionConflictError:
                continue
            except storage.StorageError as exc:
                raise self._translate(exc, marked["metadata"]["name"]) from exc
            self._written(revision)
            await self._release(current)
            return

    async def _delete_now(self, namespace: str, name: str, obj: Object) -> None:
        key = self.key(namespace, name)
        rv = int(obj["metadata"]["resourceVersion"])
        try:
            revision, _ = await self.backend.delete(key, expected_revision=rv)
        except storage.StorageError:
            # Someone changed it again (e.g. re-added a finalizer); their write wins.
            return
        self._written(revision)
        await self._release(obj)

    async def _release(self, obj: Object, keep: Object | None = None) -> None:
        """Give back allocations ``obj`` held that ``keep`` (its successor) does not."""
        if self.info.allocator is not None:
            await self.info.allocator.release(self.backend, obj, keep)

    async def delete_collection(
        self, namespace: str, list_opts: ListOptions, opts: DeleteOptions, ctx: RequestContext
    ) -> builtins.list[Object]:
        listed = await self.list(namespace, list_opts)
        deleted: list[Object] = []
        for obj in listed.items:
            meta = obj["metadata"]
            try:
                result = await self.delete(meta.get("namespace", ""), meta["name"], opts, ctx)
            except errors.StatusError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(result.obj)
        return deleted

    # ----- watch ----------------------------------------------------------

    async def watch(
        self,
        namespace: str,
        opts: ListOptions,
        *,
        send_initial_events: bool | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """ADDED/MODIFIED/DELETED events for one namespace (or all) and selector.

        resourceVersion "" or "0": the current state as ADDED events (a
        storage list at one revision), then changes after that revision
        (upstream's "Get State and Start at Most Recent"); an exact version:
        changes after it only. ``send_initial_events`` overrides that choice
        and ends the initial state with a bookmark marked
        ``k8s.io/initial-events-end`` (the watch-list protocol). Changes come
        from the shared watch cache when it holds them (see ``cacher``).
        """
        batches = self.watch_batches(namespace, opts, send_initial_events=send_initial_events)
        try:
            async for batch in batches:
                for event in batch:
                    yield event
        finally:
            await batches.aclose()  # type: ignore[attr-defined]

    async def watch_batches(
        self,
        namespace: str,
        opts: ListOptions,
        *,
        send_initial_events: bool | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[builtins.list[WatchEvent]]:
        """``watch``'s events, in lists of those ready together (never empty but ``cacher.Idle``s).

        A watch handler takes each list in one step and writes it at once: with
        many watchers and many writes, one step per event per watcher was most
        of the fan-out's cost. ``idle`` (seconds, or ``math.inf``): once the
        changes come from the watch cache, a ``cacher.Idle`` naming its
        subscription first (whose ``next_batch(idle)`` the caller may then
        await itself, skipping this generator's layers until it closes it),
        then ``cacher.IDLE`` after each ``idle`` seconds without any (a
        handler's bookmarks: one timer per quiet period, not one per batch).
        """
        # Started before the revision is read, so the cache covers it.
        cache = await self.running_watch_cache()
        initial = (
            send_initial_events
            if send_initial_events is not None
            else opts.resource_version in ("", "0")
        )
        after = 0 if initial else parse_resource_version(opts.resource_version)
        if initial:
            after = await self._current_revision()
            listed = await self.list(namespace, _initial_list_options(opts, after))
            for start in range(0, len(listed.items), _INITIAL_BATCH):
                chunk = listed.items[start : start + _INITIAL_BATCH]
                yield [WatchEvent("ADDED", obj, after) for obj in chunk]
            if send_initial_events:
                yield [
                    WatchEvent(
                        "BOOKMARK",
                        self.bookmark_object(after),
                        after,
                        {"initial_events_end": True},
                    )
                ]
        # The initial events are out (or there were none): APF frees the watch's seat.
        initialization.watch_initialized()
        changes = self._watch_changes(namespace, after, opts, cache, idle)
        try:
            async for batch in changes:
                yield batch
        finally:
            # Now, not when collected: a caller reading the subscription itself
            # (``cacher.Idle``) leaves this generator suspended at a yield.
            await changes.aclose()  # type: ignore[attr-defined]

    async def _watch_changes(
        self,
        namespace: str,
        after: int,
        opts: ListOptions,
        cache: cacher.WatchCache | None,
        idle: float | None = None,
    ) -> AsyncIterator[builtins.list[WatchEvent]]:
        """Changes after revision ``after``: from the cache if it holds them all, else storage.

        A storage watch moves to the cache at the first storage batch after
        which the cache holds every later event: a watch from a revision just
        before the cache started (a reflector that listed, then watched, while
        something else was written) otherwise decoded every event of the
        resource a second time for as long as it lived.
        """
        subscription = cache.subscribe(namespace, opts, after=after) if cache is not None else None
        if subscription is None:
            joined: list[cacher.Subscription] = []

            def join(revision: int) -> bool:
                if cache is not None and (
                    found := cache.subscribe(namespace, opts, after=revision)
                ):
                    joined.append(found)
                return bool(joined)

            prefix = self.list_prefix(namespace)
            async for batch in self._watch_storage(prefix, after, opts, join):
                yield batch
            if not joined:
                return
            subscription = joined[0]
        try:
            while (batch := await subscription.next_batch(idle)) or isinstance(batch, cacher.Idle):
                yield batch
        finally:
            subscription.close()

    async def running_watch_cache(self) -> cacher.WatchCache | None:
        """The resource's watch cache, started on first use and anew after it stopped.

        Public so that a server may warm it and tests may inspect it. None
        when disabled or when it cannot start (the caller then watches
        storage itself, which reports the storage error).
        """
        if self.watch_cache_options is None:
            return None
        if self._watch_cache is None or self._watch_cache.stopped:
            self._watch_cache = cacher.WatchCache(self, self.watch_cache_options)
        cache = self._watch_cache
        try:
            await cache.start()
        except storage.StorageError:
            return None
        return cache

    async def stop_watch_cache(self) -> None:
        """Close the watch cache's storage watch, ending its watchers (server shutdown)."""
        if self._watch_cache is not None:
            await self._watch_cache.stop()

    async def _watch_storage(
        self,
        prefix: str,
        after: int,
        opts: ListOptions,
        join: Callable[[int], bool] | None = None,
    ) -> AsyncIterator[builtins.list[WatchEvent]]:
        """A storage watch of this watcher's own: history replay, or 410 once compacted.

        ``join(revision)``, asked after each batch (its events handed on), is
        True when the watch continues elsewhere from that revision: it ends here.
        """
        stream = self.backend.watch(prefix, after_revision=after)
        try:
            async for batch in stream:
                translated = [self._translate_event(event, opts) for event in batch]
                events = [event for event in translated if event is not None]
                if events:
                    yield events
                if join is not None and batch and join(batch[-1].revision):
                    return
        except storage.CompactedError as exc:
            raise errors.too_old_resource_version(after, exc.compact_revision) from exc
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def _translate_event(self, event: storage.Event, opts: ListOptions) -> WatchEvent | None:
        change = self.decode_event(event)
        kind = self.event_type(change, opts)
        return None if kind is None else change.view(kind)

    def decode_event(self, event: storage.Event) -> DecodedEvent:
        """``event`` with its objects decoded on demand (see ``DecodedEvent``)."""
        return DecodedEvent(event, self._decode_watched)

    def _decode_watched(self, kv: storage.KeyValue, revision: int) -> Object:
        obj = self.decode(kv)
        obj["metadata"]["resourceVersion"] = str(revision)
        # Filled in before the object is shared, so no watcher has to add them.
        if "kind" not in obj or "apiVersion" not in obj:
            self._filled_kind = True
            obj.setdefault("kind", self.info.kind)
            obj.setdefault("apiVersion", self.info.group_version)
        return obj

    def event_type(self, change: DecodedEvent, opts: ListOptions) -> str | None:
        """What a watcher selecting with ``opts`` sees of ``change``: its type, or None.

        An update that brings the object into the selection is ADDED, one
        that takes it out is DELETED (upstream's cacheWatcher rules). The
        namespace is the caller's business (the key prefix). Objects are
        decoded only when a selector needs them.
        """
        event = change.event
        if event.type == "DELETE":
            if event.prev_kv is None:
                return None
            return "DELETED" if self._selects(change, opts, previous=True) else None
        now_matches = self._selects(change, opts, previous=False)
        if event.is_create or event.prev_kv is None:
            return "ADDED" if now_matches else None
        old_matches = self._selects(change, opts, previous=True)
        if now_matches and old_matches:
            return "MODIFIED"
        if now_matches:
            return "ADDED"
        if old_matches:
            return "DELETED"
        return None

    def _selects(self, change: DecodedEvent, opts: ListOptions, *, previous: bool) -> bool:
        """``matches`` of one side of ``change``; its field values worked out once per side.

        Every watcher with a field selector on the same fields shares them, and
        an update's ``previous`` side takes them from the event before it.
        """
        if opts.label_selector is None and opts.field_selector is None:
            return True
        if opts.label_selector is not None:
            obj = change.previous if previous else change.current
            if not opts.label_selector.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
        if opts.field_selector is not None:
            names = opts.field_names
            values = change.fields(previous, names)
            if values is None:
                # Only now the object: known field values need none (an update's
                # previous side may not be decoded at all, ``follow_kept``).
                obj = change.previous if previous else change.current
                values = self.field_values(obj, names)
                change.keep_fields(previous, names, values)
            return opts.field_selector.matches(values)
        return True

    def bookmark_object(self, revision: int) -> Object:
        return {
            "kind": self.info.kind,
            "apiVersion": self.info.group_version,
            "metadata": {"resourceVersion": str(revision)},
        }

    async def _current_revision(self) -> int:
        try:
            return await self.backend.current_revision()
        except storage.StorageError as exc:
            raise self._translate(exc, "") from exc

    # ----- errors ---------------------------------------------------------

    def _translate(self, exc: storage.StorageError, name: str) -> errors.StatusError:
        """The one place where storage errors become API errors."""
        if isinstance(exc, storage.KeyExistsError):
            return errors.already_exists(self.gr, name)
        if isinstance(exc, storage.KeyNotFoundError):
            return errors.not_found(self.gr, name)
        if isinstance(exc, storage.RevisionConflictError):
            return errors.conflict(self.gr, name)
        if isinstance(exc, storage.CompactedError):
            return errors.too_old_resource_version(exc.requested, exc.compact_revision)
        if isinstance(exc, storage.FutureRevisionError):
            return errors.timeout(
                f"Too large resource version: {exc.requested}, current: {exc.current}", 1
            )
        return errors.internal_error(str(exc))


def _initial_list_options(opts: ListOptions, revision: int) -> ListOptions:
    return ListOptions(
        label_selector=opts.label_selector,
        field_selector=opts.field_selector,
        field_names=opts.field_names,
        resource_version=str(revision),
        resource_version_match="Exact",
    )


def parse_resource_version(value: str) -> int:
    try:
        rv = int(value)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{value}"') from None
    if rv < 0:
        raise errors.bad_request(f'invalid resource version "{value}"')
    return rv


def encode_continue(start: str, revision: int, position: int = 0) -> str:
    """Upstream's continue token (v, rv, start) plus ``pos``: keys already listed.

    Clients treat the token as opaque; ``pos`` lets us report
    remainingItemCount exactly from the snapshot's total.
    """
    token = orjson.dumps(
        {"v": "meta.k8s.io/v1", "rv": revision, "start": start + "\x00", "pos": position}
    )
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, int, int]:
    """(key suffix to start after, snapshot revision, keys before) from a continue token."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("version")
        start = str(data["start"]).rstrip("\x00")
        revision = int(data["rv"])
        position = int(data.get("pos", 0))
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    if revision <= 0 or start.startswith("/") or ".." in start.split("/"):
        raise errors.bad_request("continue key is not valid: invalid start key")
    return start, revision, position


async def _undo(rollbacks: list[Rollback]) -> None:
    for rollback in reversed(rollbacks):
        await rollback()
    rollbacks.clear()


async def sleep_forever() -> None:
    await asyncio.Event().wait()
