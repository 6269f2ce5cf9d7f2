"""``metadata.managedFields``: who owns which fields, kept on every write (upstream: managedfields).

Each entry is one manager's field set for one (manager, operation,
apiVersion for updates, subresource). The rules, as upstream's
structured-merge-diff ``Updater``:

* an update (PUT, non-apply PATCH, create) gives the writer every field it
  added or changed; other managers lose those and every removed field;
* an apply makes the applier own exactly the fields of its configuration,
  merges the configuration into the live object, removes fields the applier
  applied last time and no longer does (unless someone else owns them), and
  refuses (409) to change a field another manager owns unless forced, in
  which case that manager loses it; applying a value equal to the live one
  only shares ownership;
* the first apply to an object that has no managedFields attributes the
  existing fields to ``before-first-apply``, so they can conflict;
* an apply to an object carrying kubectl's last-applied-configuration
  annotation refreshes it, so client-side apply keeps working afterwards.

Never tracked: ``apiVersion``, ``kind`` and the server-owned metadata
(name, namespace, uid, resourceVersion, generation, creationTimestamp,
managedFields), as upstream's stripMeta.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson

from kajitori.machinery.fieldmanager import fieldpath, typed
from kajitori.machinery.schema import SchemaNode

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Object = dict[str, Any]

# The metadata fields no manager ever owns (upstream's stripped fields).
UNOWNED_METADATA = (
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "resourceVersion",
)
_STRIPPED: frozenset[fieldpath.Path] = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {("f:metadata", fieldpath.field(name)) for name in UNOWNED_METADATA}
)
_MANAGED_FIELDS: fieldpath.Path = ("f:metadata", "f:managedFields")


class ManagedFieldsError(ValueError):
    """managedFields that cannot be decoded."""


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    fields: fieldpath.FieldSet
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return _identity(self.manager, self.operation, self.api_version, self.subresource)

    def describe(self) -> str:
        return _describe(self.manager, self.operation, self.api_version, self.subresource)


def _identity(
    manager: str, operation: str, api_version: str, subresource: str
) -> tuple[str, str, str, str]:
    """Appliers are one manager whatever version they apply (upstream's identifier)."""
    version = api_version if operation == UPDATE else ""
    return manager, operation, version, subresource


def _describe(manager: str, operation: str, api_version: str, subresource: str) -> str:
    """How upstream names this manager in a conflict."""
    text = orjson.dumps(manager).decode()
    if subresource:
        text += f" with subresource {orjson.dumps(subresource).decode()}"
    if operation == UPDATE:
        text += f" using {api_version}"
    return text


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """What of an object a write may own: paths under ``only`` (if any), none under ``reset``."""

    reset: tuple[fieldpath.Path, ...] = ()
    only: tuple[fieldpath.Path, ...] = ()

    @property
    def only_top_fields(self) -> frozenset[str] | None:
        """Names of the top-level fields ``only`` lets in, if it is made of such fields alone."""
        return _only_top_fields(self.only)

    @property
    def reset_top_fields(self) -> frozenset[str]:
        """Names of the top-level fields ``reset`` shuts out whole."""
        return _reset_top_fields(self.reset)

    def keeps(self, path: fieldpath.Path) -> bool:
        # Plain loops: this runs once per path of every object written.
        if path in _STRIPPED or path[:2] == _MANAGED_FIELDS:
            return False
        for reset in self.reset:
            if path[: len(reset)] == reset:
                return False
        if not self.only:
            return True
        for only in self.only:
            if path[: len(only)] == only:
                return True
        return False


WHOLE = Scope()


# Per scope, asked on every write (a few scopes in all).
@functools.lru_cache(maxsize=64)
def _only_top_fields(only: tuple[fieldpath.Path, ...]) -> frozenset[str] | None:
    if not only or any(len(p) != 1 or not p[0].startswith("f:") for p in only):
        return None
    return frozenset(p[0][2:] for p in only)


@functools.lru_cache(maxsize=64)
def _reset_top_fields(reset: tuple[fieldpath.Path, ...]) -> frozenset[str]:
    return frozenset(p[0][2:] for p in reset if len(p) == 1 and p[0].startswith("f:"))


class ApplyConflict(Exception):
    """An apply that would change fields other managers own."""

    def __init__(self, conflicts: list[tuple[Entry, fieldpath.Path]]) -> None:
        super().__init__(message(conflicts))
        self.conflicts = conflicts


def message(conflicts: list[tuple[Entry, fieldpath.Path]]) -> str:
    """Upstream's text: one conflict inline, several grouped by manager."""
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        return (
            f"Apply failed with 1 conflict: conflict with {entry.describe()}: "
            f"{fieldpath.render(path)}"
        )
    lines: list[str] = []
    by_manager: dict[str, list[fieldpath.Path]] = {}
    for entry, path in conflicts:
        by_manager.setdefault(entry.describe(), []).append(path)
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {fieldpath.render(p)}" for p in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# ----- wire form ---------------------------------------------------------------


def decode(raw: Any) -> list[Entry]:
    """Entries from ``metadata.managedFields``; malformed ones raise ``ManagedFieldsError``."""
    return _unique_entries(raw, _decode_entry)


_E = TypeVar("_E", "Entry", "Stored")


def _unique_entries(raw: Any, read_one: Callable[[Any], _E]) -> list[_E]:
    """``read_one`` of each item of ``raw``, refusing a list or a manager seen twice."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ManagedFieldsError("managedFields must be a list")
    entries: dict[tuple[str, str, str, str], _E] = {}
    for item in raw:
        entry = read_one(item)
        if entry.identity in entries:
            raise ManagedFieldsError(f"duplicate manager entry {entry.describe()}")
        entries[entry.identity] = entry
    return list(entries.values())


def _decode_entry(item: Any) -> Entry:
    manager, operation, api_version, time, subresource, tree = _read_item(item)
    try:
        fields = fieldpath.from_fields_v1(tree)
    except fieldpath.FieldsV1Error as exc:
        raise ManagedFieldsError(str(exc)) from None
    return Entry(manager, operation, api_version, time, fields, subresource)


def _read_item(item: Any) -> tuple[str, str, str, str, str, Any]:
    """An entry's manager, operation, apiVersion, time, subresource and undecoded fieldsV1."""
    if not isinstance(item, dict):
        raise ManagedFieldsError("managedFields entry must be an object")
    if item.get("fieldsType", "FieldsV1") not in ("FieldsV1", ""):
        raise ManagedFieldsError(f"unsupported fieldsType {item.get('fieldsType')!r}")
    return (
        str(item.get("manager") or ""),
        str(item.get("operation") or ""),
        str(item.get("apiVersion") or ""),
        str(item.get("time") or ""),
        str(item.get("subresource") or ""),
        item.get("fieldsV1") or {},
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """An entry as read back with its object: checked, its field set decoded only on demand.

    ``tree`` is the entry's ``fieldsV1`` as read, known to decode; when
    ``canonical`` it is exactly what ``fieldpath.to_fields_v1`` writes for its
    set, so an entry a write leaves alone can be written back as it was read.
    """

    manager: str
    operation: str
    api_version: str
    time: str
    tree: dict[str, Any]
    canonical: bool
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return _identity(self.manager, self.operation, self.api_version, self.subresource)

    def describe(self) -> str:
        return _describe(self.manager, self.operation, self.api_version, self.subresource)

    @property
    def fields(self) -> fieldpath.FieldSet:
        return fieldpath.from_fields_v1(self.tree)

    def entry(self) -> Entry:
        return Entry(
            self.manager, self.operation, self.api_version, self.time, self.fields, self.subresource
        )


def read(raw: Any) -> list[Stored]:
    """``decode``'s entries (the same checks and errors), their field sets left encoded."""
    return _unique_entries(raw, _read_stored)


def _read_stored(item: Any) -> Stored:
    manager, operation, api_version, time, subresource, tree = _read_item(item)
    try:
        canonical = fieldpath.check(tree)
    except fieldpath.FieldsV1Error as exc:
        raise ManagedFieldsError(str(exc)) from None
    return Stored(manager, operation, api_version, time, tree, canonical, subresource)


def encode(entries: Iterable[Entry]) -> list[Object]:
    """The wire form, in upstream's order: appliers first, then by time, manager, version."""
    ordered = sorted(entries, key=_order)
    return [
        _wire(
            e.manager,
            e.operation,
            e.api_version,
            e.time,
            fieldpath.to_fields_v1(e.fields),
            e.subresource,
        )
        for e in ordered
    ]


def _order(e: Entry | Stored) -> tuple[str, str, str, str, str]:
    return e.operation, e.time, e.manager, e.api_version, e.subresource


def _wire(
    manager: str,
    operation: str,
    api_version: str,
    time: str,
    fields_v1: dict[str, Any],
    subresource: str,
) -> Object:
    raw: Object = {"manager": manager, "operation": operation}
    if api_version:
        raw["apiVersion"] = api_version
    if time:
        raw["time"] = time
    raw["fieldsType"] = "FieldsV1"
    raw["fieldsV1"] = fields_v1
    if subresource:
        raw["subresource"] = subresource
    return {k: v for k, v in raw.items() if v != ""}


# ----- the rules -----------------------------------------------------------------


def _flat(
    obj: Object | None, schema: SchemaNode | None, scope: Scope, *, strict: bool = False
) -> typed.Flat:
    obj = _walked(obj, scope, strict=strict)
    if not obj:
        return {}
    flat = typed.flatten(obj, schema, strict=strict)
    return {p: n for p, n in flat.items() if scope.keeps(p)}


def _walked(obj: Object | None, scope: Scope, *, strict: bool = False) -> Object:
    """What of ``obj`` is walked for ``scope`` (``{}``: nothing)."""
    if not obj:
        return {}
    if not strict:
        # Top-level fields the scope cannot own are not walked at all (a pod's
        # spec on a status write); ``strict`` must see the whole object's lists.
        obj = _top_fields_in_scope(obj, scope)
        if not obj:
            return {}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        # managedFields are never owned, and walking them (a large free-form tree of
        # every manager's fieldsV1) cost more than the rest of the object.
        trimmed = {k: v for k, v in meta.items() if k != "managedFields"}
        obj = {**obj, "metadata": trimmed}
    return obj


def _change(
    old: Object | None, new: Object, schema: SchemaNode | None, scope: Scope
) -> typed.Comparison:
    """``typed.compare`` of both objects' flat forms for ``scope``, unchanged parts unwalked."""
    old_walked, new_walked = _walked(old, scope), _walked(new, scope)
    if not old_walked or not new_walked:
        return typed.compare(_flat(old, schema, scope), _flat(new, schema, scope))
    # Whether a path is added, modified or removed depends on that path alone,
    # so keeping the scope's paths after comparing is the same as before.
    found = typed.diff(old_walked, new_walked, schema)
    if _keeps_all_walked(scope) and not typed.atomic_object(schema):
        return found  # (an atomic root is the one path below no top-level field)
    keeps = scope.keeps
    return typed.Comparison(
        frozenset(p for p in found.added if keeps(p)),
        frozenset(p for p in found.modified if keeps(p)),
        frozenset(p for p in found.removed if keeps(p)),
    )


def _keeps_all_walked(scope: Scope) -> bool:
    """Whether ``scope.keeps`` every path of what ``_walked`` leaves (not strict).

    True for a scope of whole top-level fields other than those ``_STRIPPED``
    paths start with (status only): every path walked starts with one of them.
    """
    only = scope.only_top_fields
    return only is not None and not scope.reset and only.isdisjoint(_STRIPPED_TOP)


_STRIPPED_TOP = frozenset(path[0][2:] for path in _STRIPPED) | {"metadata"}


def _top_fields_in_scope(obj: Object, scope: Scope) -> Object:
    """``obj`` without the top-level fields every path of which ``scope.keeps`` refuses."""
    only = scope.only_top_fields
    if only is not None:
        return {k: v for k, v in obj.items() if k in only}
    reset = scope.reset_top_fields
    if reset:
        return {k: v for k, v in obj.items() if k not in reset}
    return obj


def created_fields_v1(
    obj: Object, schema: SchemaNode | None, scope: Scope = WHOLE
) -> dict[str, Any] | None:
    """The FieldsV1 a create's manager owns (``{}``: nothing), or None if not worked out here.

    Equal to ``encode(update(None, obj, [], ...))``'s fieldsV1, without its
    flat map and comparison (``typed.owned_fields_v1``). Scopes other than whole
    top-level fields (``WHOLE``, status only, all but status) answer None.
    """
    only = scope.only_top_fields
    if scope.only and only is None:
        return None
    if len(scope.reset_top_fields) != len(scope.reset):
        return None
    obj = _top_fields_in_scope(obj, scope)
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    if not obj:
        return {}
    if typed.atomic_object(schema):
        return None
    fields_v1 = typed.owned_fields_v1(obj, schema)
    # What ``Scope.keeps`` refuses once the scope's top-level fields are gone: the
    # exact paths of ``_STRIPPED`` (their children, if any, stay owned).
    for path in _STRIPPED:
        fieldpath.discard(fields_v1, path)
    # Read back at the object's next writes (``read``): known canonical, not checked again.
    fieldpath.note_canonical(orjson.dumps(fields_v1))
    return fields_v1


def update(
    old: Object | None,
    new: Object,
    entries: list[Entry],
    *,
    manager: str,
    api_version: str,
    schema: SchemaNode | None,
    now: str,
    subresource: str = "",
    scope: Scope = WHOLE,
) -> list[Entry]:
    """Ownership after a non-apply write of ``new`` over ``old`` (None: a create)."""
    change = _change(old, new, schema, scope)
    identity = (manager, UPDATE, api_version, subresource)
    out: list[Entry] = []
    own: Entry | None = None
    touched = change.changed | change.removed
    for entry in entries:
        if entry.identity == identity:
            own = entry
            continue
        if entry.fields and entry.fields.isdisjoint(touched):
            out.append(entry)  # untouched: the same set (its encoding is remembered by it)
            continue
        kept = entry.fields - touched
        if kept:
            out.append(dataclasses.replace(entry, fields=kept))
    before = own.fields if own is not None else fieldpath.EMPTY
    fields = (before | change.changed) - change.removed
    if fields:
        when = now if own is None or change.changed or change.removed else own.time
        out.append(Entry(manager, UPDATE, api_version, when, fields, subresource))
    return out


def update_stored(
    old: Object | None,
    new: Object,
    entries: list[Stored],
    *,
    manager: str,
    api_version: str,
    schema: SchemaNode | None,
    now: str,
    subresource: str = "",
    scope: Scope = WHOLE,
) -> list[Object]:
    """``encode(update(old, new, [e.entry() for e in entries], ...))``, touching only what changes.

    Entries read in canonical form are edited as trees (``fieldpath.edited``):
    the changed and removed paths are looked up in each, and one the write
    takes nothing from is written back as it was read, so a kubelet's status
    write neither decodes nor encodes the creator's entry (most of a pod's
    managedFields), and its own entry is changed where its set changes.
    """
    change = _change(old, new, schema, scope)
    identity = (manager, UPDATE, api_version, subresource)
    touched = change.changed | change.removed
    # Trees are edited in place of decoding and encoding them; a root path (an
    # atomic root) is the one FieldsV1 cannot hold, so such a write takes the sets.
    editable = () not in touched
    # A tree with none of the touched paths' first elements loses nothing: the
    # creator's entry in a kubelet's status write (all under ``f:status``).
    touched_tops = {path[0] for path in touched} if editable else set()
    rows: list[tuple[tuple[str, str, str, str, str], Object]] = []
    own: Stored | None = None
    for entry in entries:
        if entry.identity == identity:
            own = entry
            continue
        if not entry.tree:
            continue  # an empty set: ``update`` drops it
        if entry.canonical and editable and touched_tops.isdisjoint(entry.tree):
            kept_tree = entry.tree  # what ``edited`` answers: the tree itself
        elif entry.canonical and editable:
            kept_tree = fieldpath.edited(entry.tree, (), touched)
        else:
            kept_tree = fieldpath.to_fields_v1(entry.fields - touched)
        if kept_tree:
            rows.append((_order(entry), _wire_stored(entry, kept_tree)))
    if own is not None and own.canonical and editable:
        tree = fieldpath.edited(own.tree, change.changed, change.removed)
    else:
        before = own.fields if own is not None else fieldpath.EMPTY
        tree = fieldpath.to_fields_v1((before | change.changed) - change.removed)
    if tree:
        when = now if own is None or change.changed or change.removed else own.time
        mine = Stored(manager, UPDATE, api_version, when, tree, True, subresource)
        rows.append((_order(mine), _wire_stored(mine, tree)))
    rows.sort(key=lambda row: row[0])
    return [row[1] for row in rows]


def _wire_stored(entry: Stored, tree: dict[str, Any]) -> Object:
    return _wire(
        entry.manager, entry.operation, entry.api_version, entry.time, tree, entry.subresource
    )


def apply(
    live: Object | None,
    config: Object,
    entries: list[Entry],
    *,
    manager: str,
    force: bool,
    api_version: str,
    schema: SchemaNode | None,
    now: str,
    subresource: str = "",
    scope: Scope = WHOLE,
) -> tuple[Object, list[Entry]]:
    """Merge ``config`` into ``live`` (None: create) for ``manager``; raises ``ApplyConflict``."""
    applied = typed.field_set(_flat(config, schema, scope, strict=True))
    live_flat = _flat(live, schema, scope)
    if live and not entries:
        existing = typed.field_set(live_flat)
        if existing:
            entries = [Entry(BEFORE_FIRST_APPLY, UPDATE, api_version, now, existing, subresource)]
    identity = (manager, APPLY, "", subresource)
    own = next((e for e in entries if e.identity == identity), None)
    others = [e for e in entries if e.identity != identity]
    merged: Object = typed.merge(live or {}, config, schema)
    dropped = own.fields - applied if own is not None else fieldpath.EMPTY
    if dropped:
        keep = applied.union(*(e.fields for e in others))
        _prune(merged, dropped - keep, keep, schema)
    change = typed.compare(live_flat, _flat(merged, schema, scope))
    conflicts = [(e, p) for e in others for p in fieldpath.sorted_paths(e.fields & change.changed)]
    if conflicts and not force:
        allowed = (
            _client_side_applied(live, schema, scope, api_version) if manager == "kubectl" else None
        )
        remaining = [(e, p) for e, p in conflicts if allowed is None or p not in allowed]
        if remaining:
            raise ApplyConflict(remaining)
    out: list[Entry] = []
    for entry in others:
        kept = entry.fields - change.changed - change.removed
        if kept:
            out.append(dataclasses.replace(entry, fields=kept))
    out.append(Entry(manager, APPLY, api_version, now, applied, subresource))
    _refresh_last_applied(live, merged, config)
    return merged, out


def _client_side_applied(
    live: Object | None, schema: SchemaNode | None, scope: Scope, api_version: str
) -> fieldpath.FieldSet | None:
    """Fields kubectl's last-applied annotation still describes (upstream's lastAppliedManager).

    ``kubectl apply --server-side`` may take these over from client-side
    apply without conflicts: the fields of the annotation whose value the
    live object still has.
    """
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    try:
        last = orjson.loads(annotations.get(LAST_APPLIED) or "null")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    last_flat = _flat(last, schema, scope)
    change = typed.compare(last_flat, _flat(live, schema, scope))
    return typed.field_set(last_flat) - change.changed - change.removed


def _prune(
    merged: Object,
    dropped: fieldpath.FieldSet,
    keep: fieldpath.FieldSet,
    schema: SchemaNode | None,
) -> None:
    """Remove what the applier stopped applying, but never a parent of something owned."""
    kept_parents = {p[:i] for p in keep for i in range(1, len(p))}
    typed.remove(merged, [p for p in dropped if p not in kept_parents], schema)


def _refresh_last_applied(live: Object | None, merged: Object, config: Object) -> None:
    """Upstream's lastAppliedUpdater: keep kubectl's annotation in step with the apply."""
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    if LAST_APPLIED not in annotations:
        return
    applied = orjson.loads(orjson.dumps(config))
    config_annotations = applied.get("metadata", {}).get("annotations")
    if isinstance(config_annotations, dict):
        config_annotations.pop(LAST_APPLIED, None)
        if not config_annotations:
            del applied["metadata"]["annotations"]
    merged_meta = merged.setdefault("metadata", {})
    merged_meta.setdefault("annotations", {})[LAST_APPLIED] = orjson.dumps(applied).decode() + "\n"
