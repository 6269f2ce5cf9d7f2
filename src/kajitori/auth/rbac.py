"""RBAC: the authorizer, its in-memory policy index, aggregation, escalation checks.

Upstream spreads this over plugin/pkg/auth/authorizer/rbac (the authorizer and
``RuleAllows``), pkg/apis/rbac/v1 (the ``*Matches`` helpers),
pkg/registry/rbac/validation (rule resolution, ``Covers``, ``CompactRules``),
pkg/registry/rbac/*/policybased (escalation prevention) and
pkg/controller/clusterroleaggregation.

Owns:

- rule matching exactly as upstream: ``*`` verbs, groups and resources;
  ``*/scale``-style subresource wildcards; resourceNames (empty = any);
  nonResourceURLs with a trailing ``*`` as a prefix match;
- ``PolicyIndex``: roles and bindings in memory, bindings indexed by subject
  (a ServiceAccount subject is the user ``system:serviceaccount:<ns>:<name>``),
  so deciding a request is a few dict lookups, never a storage read;
- ``RBACAuthorizer``: keeps the index fed from the four stores (list, then
  watch from the list's revision; relist after 410 or a broken stream) and
  keeps aggregated ClusterRoles' rules up to date (a small in-server
  stand-in for the clusterrole-aggregation controller);
- ``EscalationCheck``: the admission-time guard that a user cannot create a
  role granting, or a binding to a role holding, permissions they lack
  unless allowed to ``escalate`` / ``bind``.

``system:masters`` is short-circuited in front of RBAC by
``auth.authorizer.PrivilegedGroups`` (upstream's privileged group authorizer).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kajitori.auth import reflector
from kajitori.machinery import errors, labels
from kajitori.registry.authorization.authorizer import Attributes, Decision, Rule, RuleSet
from kajitori.registry.generic.request import RequestContext, UserInfo

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

log = logging.getLogger(__name__)

Object = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
PRIVILEGED_GROUP = "system:masters"
KINDS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
_BINDINGS = ("rolebindings", "clusterrolebindings")
# Cached authorization answers; the cache empties when full or when the policy changes.
DECISION_CACHE_SIZE = 8192
_ROLE_KIND_PLURAL = {"Role": "roles", "ClusterRole": "clusterroles"}
# The aggregation stand-in writes as the API server itself.
_SYSTEM = UserInfo("system:apiserver", (PRIVILEGED_GROUP,))
FULL_AUTHORITY: tuple[Rule, ...] = (
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
)


# ----- rule matching (pkg/apis/rbac/v1/evaluation_helpers.go) -------------------


def verb_matches(rule: Rule, verb: str) -> bool:
    verbs = rule.get("verbs") or ()
    return "*" in verbs or verb in verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    groups = rule.get("apiGroups") or ()
    return "*" in groups or group in groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    """``combined`` is ``resource[/subresource]``; ``*/sub`` matches any resource's ``sub``."""
    for candidate in rule.get("resources") or ():
        if candidate in ("*", combined):
            return True
        if subresource and candidate == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    """Upstream's ``RuleAllows``: does this one rule permit the request?"""
    if not verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (
        api_group_matches(rule, attrs.api_group)
        and resource_matches(rule, combined, attrs.subresource)
        and resource_name_matches(rule, attrs.name)
    )


# ----- subjects -------------------------------------------------------------------

SubjectKey = tuple[str, str]


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def subject_key(subject: Mapping[str, Any], binding_namespace: str) -> SubjectKey | None:
    """The index key a subject matches, None for one that can match nobody.

    A ServiceAccount subject is the user ``system:serviceaccount:<ns>:<name>``;
    its namespace defaults to the binding's (upstream's appliesToUser).
    """
    kind = subject.get("kind", "")
    name = subject.get("name", "")
    if kind in ("User", "Group"):
        return (kind, name)
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if not namespace:
            return None
        return ("User", service_account_username(namespace, name))
    return None


def _user_keys(user: UserInfo) -> list[SubjectKey]:
    return [("User", user.name), *(("Group", g) for g in user.groups)]


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    """As upstream's describeSubject; note ServiceAccounts read ``name/namespace`` there."""
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or binding_namespace}"
    return f"{subject.get('kind', '')} {go_quote(name)}"


def _meta(obj: Object) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


# ----- the index ----------------------------------------------------------------


class PolicyIndex:
    """Roles and bindings as last seen, with bindings indexed by subject."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[tuple[str, str], Object]] = {k: {} for k in KINDS}
        # Bumped by every change, so answers derived from the index know when they are stale.
        self.generation = 0
        # (binding plural, binding namespace, subject kind, subject name) -> binding keys
        self._by_subject: dict[tuple[str, str, str, str], set[tuple[str, str]]] = {}

    def replace(self, kind: str, items: Iterable[Object]) -> None:
        self.generation += 1
        for key in list(self.objects[kind]):
            self._forget(kind, key)
        for obj in items:
            self.apply(kind, "ADDED", obj)

    def apply(self, kind: str, event_type: str, obj: Object) -> None:
        self.generation += 1
        key = _meta(obj)
        self._forget(kind, key)
        if event_type == "DELETED":
            return
        self.objects[kind][key] = obj
        if kind in _BINDINGS:
            for subject in obj.get("subjects") or ():
                sk = subject_key(subject, key[0])
                if sk is not None:
                    self._by_subject.setdefault((kind, key[0], *sk), set()).add(key)

    def _forget(self, kind: str, key: tuple[str, str]) -> None:
        old = self.objects[kind].pop(key, None)
        if old is None or kind not in _BINDINGS:
            return
        for subject in old.get("subjects") or ():
            sk = subject_key(subject, key[0])
            if sk is None:
                continue
            entry = self._by_subject.get((kind, key[0], *sk))
            if entry is not None:
                entry.discard(key)
                if not entry:
                    del self._by_subject[(kind, key[0], *sk)]

    def role_ref_rules(self, role_ref: Mapping[str, Any], namespace: str) -> list[Rule]:
        """The rules a roleRef points at; KeyError (upstream's message) when it is missing."""
        kind = role_ref.get("kind", "")
        name = role_ref.get("name", "")
        if kind == "ClusterRole":
            role = self.objects["clusterroles"].get(("", name))
        elif kind == "Role":
            role = self.objects["roles"].get((namespace, name))
        else:
            raise KeyError(f'unsupported role reference kind: "{kind}"')
        if role is None:
            raise KeyError(f'{kind.lower()}.{RBAC_GROUP} "{name}" not found')
        return list(role.get("rules") or ())

    def visit(
        self, user: UserInfo, namespace: str
    ) -> Iterator[tuple[Callable[[], str], Rule | None, str]]:
        """(source, rule, error) for every rule bound to ``user`` in ``namespace``.

        Cluster role bindings first, then role bindings in ``namespace`` (as
        upstream's VisitRulesFor); ``error`` is set, and ``rule`` None, for a
        binding whose role is missing. ``source()`` describes the binding; it
        is a function because only an allowing rule's source is ever shown,
        and formatting it for every rule visited cost more than matching.
        """
        scopes = [("clusterrolebindings", "")]
        if namespace:
            scopes.append(("rolebindings", namespace))
        for kind, scope_ns in scopes:
            for key, subject in self._bindings_for(kind, scope_ns, user):
                binding = self.objects[kind].get(key)
                if binding is None:
                    continue
                yield from self._binding_rules(kind, binding, subject, scope_ns)

    def _bindings_for(
        self, kind: str, namespace: str, user: UserInfo
    ) -> Iterator[tuple[tuple[str, str], Mapping[str, Any]]]:
        seen: set[tuple[str, str]] = set()
        for sk in _user_keys(user):
            for key in sorted(self._by_subject.get((kind, namespace, *sk), ())):
                if key in seen:
                    continue
                seen.add(key)
                binding = self.objects[kind][key]
                yield key, _matching_subject(binding, sk, namespace)

    def _binding_rules(
        self, kind: str, binding: Object, subject: Mapping[str, Any], namespace: str
    ) -> Iterator[tuple[Callable[[], str], Rule | None, str]]:
        ref = binding.get("roleRef") or {}
        ns, name = _meta(binding)
        source = functools.partial(
            _describe_binding,
            kind,
            ns,
            name,
            ref.get("kind", ""),
            ref.get("name", ""),
            str(subject.get("kind", "")),
            str(subject.get("name", "")),
            str(subject.get("namespace") or ""),
        )
        try:
            rules = self.role_ref_rules(ref, namespace)
        except KeyError as exc:
            yield source, None, str(exc.args[0])
            return
        for rule in rules:
            yield source, rule, ""


@functools.lru_cache(maxsize=4096)
def _describe_binding(
    kind: str,
    ns: str,
    name: str,
    role_kind: str,
    role_name: str,
    subject_kind: str,
    subject_name: str,
    subject_namespace: str,
) -> str:
    label = "ClusterRoleBinding" if kind == "clusterrolebindings" else "RoleBinding"
    # Upstream shows a RoleBinding as "name/namespace".
    shown = f"{name}/{ns}" if ns else name
    subject = {"kind": subject_kind, "name": subject_name, "namespace": subject_namespace}
    return (
        f"{label} {go_quote(shown)} of {role_kind} {go_quote(role_name)} "
        f"to {_describe_subject(subject, ns)}"
    )


def _matching_subject(binding: Object, sk: SubjectKey, namespace: str) -> Mapping[str, Any]:
    for subject in binding.get("subjects") or ():
        if subject_key(subject, namespace) == sk:
            return subject
    return {}


# ----- the authorizer -----------------------------------------------------------


class RBACAuthorizer:
    """Upstream's RBACAuthorizer over a ``PolicyIndex`` fed by the stores' watches."""

    def __init__(self, index: PolicyIndex | None = None) -> None:
        self.index = index or PolicyIndex()
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = {kind: asyncio.Event() for kind in KINDS}
        self._aggregated = asyncio.Event()
        self._roles_changed = asyncio.Event()
        self._decisions: dict[Attributes, tuple[Decision, str]] = {}
        self._decisions_generation = -1

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        # Clients repeat the same requests (a controller's GETs, a kubelet's
        # status writes), and the policy changes rarely: answers are kept until
        # any role or binding changes.
        if self._decisions_generation != self.index.generation:
            self._decisions.clear()
            self._decisions_generation = self.index.generation
        decision = self._decisions.get(attrs)
        if decision is None:
            decision = self._decide(attrs)
            if len(self._decisions) >= DECISION_CACHE_SIZE:
                self._decisions.clear()
            self._decisions[attrs] = decision
        return decision

    def _decide(self, attrs: Attributes) -> tuple[Decision, str]:
        errs: list[str] = []
        for source, rule, error in self.index.visit(attrs.user, attrs.namespace):
            if rule is not None and rule_allows(attrs, rule):
                return "Allow", f"RBAC: allowed by {source()}"
            if error:
                errs.append(error)
        return "NoOpinion", _aggregate_errors(errs)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        result = RuleSet()
        errs: list[str] = []
        for _, rule, error in self.index.visit(user, namespace):
            if error:
                errs.append(error)
            if rule is None:
                continue
            if rule.get("resources"):
                result.resource_rules.append(rule)
            if rule.get("nonResourceURLs"):
                result.non_resource_rules.append(rule)
        if errs:
            result.evaluation_error = _aggregate_errors(errs)
        return result

    def policy_rules(self, user: UserInfo, namespace: str) -> list[Rule]:
        """Every rule bound to ``user`` in ``namespace`` (upstream's RulesFor), for escalation."""
        return [rule for _, rule, _ in self.index.visit(user, namespace) if rule is not None]

    # ----- feeding the index ---------------------------------------------

    def start(self, stores: Mapping[str, Store]) -> None:
        """Begin list+watch of the four RBAC kinds (``stores`` keyed by plural)."""
        for kind in KINDS:
            self._tasks.append(asyncio.create_task(self._reflect(kind, stores[kind])))
        self._tasks.append(asyncio.create_task(self._aggregate_loop(stores["clusterroles"])))

    async def wait_synced(self) -> None:
        """Until every kind has been listed once and aggregated roles filled."""
        for event in self._synced.values():
            await event.wait()
        await self._aggregated.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _reflect(self, kind: str, store: Store) -> None:
        def replace(items: Iterable[Object]) -> None:
            self.index.replace(kind, items)
            self._note_change(kind)

        def apply(event_type: str, obj: Object) -> None:
            self.index.apply(kind, event_type, obj)
            self._note_change(kind)

        await reflector.reflect(f"rbac {kind}", store, replace, apply, self._synced[kind])

    def _note_change(self, kind: str) -> None:
        if kind == "clusterroles":
            self._roles_changed.set()

    # ----- aggregation ----------------------------------------------------

    async def _aggregate_loop(self, store: Store) -> None:
        while True:
            await self._roles_changed.wait()
            self._roles_changed.clear()
            for name, rules in aggregated_rules(self.index.objects["clusterroles"]).items():
                await self._write_rules(store, name, rules)
            self._aggregated.set()

    async def _write_rules(self, store: Store, name: str, rules: list[Rule]) -> None:
        current = self.index.objects["clusterroles"].get(("", name))
        if current is None:
            return
        updated = copy.deepcopy(current)
        updated["rules"] = rules
        try:
            await store.update("", name, updated, RequestContext(user=_SYSTEM))
        except errors.StatusError as exc:
            # A conflict means a newer version is on its way through the watch,
            # which triggers another pass.
            if exc.code != 409:
                log.warning("rbac: aggregating clusterrole %s failed: %s", name, exc.message)


def aggregation_updates(
    cluster_roles: Mapping[tuple[str, str], Object],
) -> Iterator[tuple[str, list[Rule]]]:
    """(name, rules) for every aggregated ClusterRole whose rules are out of date.

    As upstream's controller: for each selector in order, the matching roles
    by name (skipping the role itself), each rule appended unless present.
    """
    by_name = sorted(cluster_roles.values(), key=lambda r: _meta(r)[1])
    for role in by_name:
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors")
        if not selectors:
            continue
        name = _meta(role)[1]
        rules: list[Rule] = []
        for raw in selectors:
            try:
                selector = labels.selector_from_label_selector(raw)
            except labels.SelectorError:
                continue
            for other in by_name:
                if _meta(other)[1] == name:
                    continue
                if not selector.matches((other.get("metadata") or {}).get("labels") or {}):
                    continue
                rules.extend(r for r in other.get("rules") or () if r not in rules)
        if rules != list(role.get("rules") or ()):
            yield name, rules


def aggregated_rules(cluster_roles: Mapping[tuple[str, str], Object]) -> dict[str, list[Rule]]:
    """The rules every out-of-date aggregated role should end with.

    Aggregated roles may select each other (admin selects edit, which
    selects view), so passes repeat on a copy until nothing changes; the
    controller upstream converges the same way, one write per pass.
    """
    roles = {key: dict(role) for key, role in cluster_roles.items()}
    changed: dict[str, list[Rule]] = {}
    for _ in range(len(roles) + 1):
        updates = list(aggregation_updates(roles))
        if not updates:
            break
        for name, rules in updates:
            roles[("", name)]["rules"] = rules
            changed[name] = rules
    return changed


def _aggregate_errors(errs: list[str]) -> str:
    if not errs:
        return ""
    unique = list(dict.fromkeys(errs))
    text = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
    return f"RBAC: {text}"


# ----- escalation prevention (pkg/registry/rbac/validation, policybased) ------


def breakdown_rule(rule: Rule) -> list[Rule]:
    """One rule per (group, resource, verb[, name]) and per (url, verb): upstream's BreakdownRule."""
    out: list[Rule] = []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    for group in rule.get("apiGroups") or []:
        for res in rule.get("resources") or []:
            for verb in verbs:
                base: Rule = {"verbs": [verb], "apiGroups": [group], "resources": [res]}
                if names:
                    out.extend({**base, "resourceNames": [n]} for n in names)
                else:
                    out.append(base)
    for url in rule.get("nonResourceURLs") or []:
        out.extend({"verbs": [verb], "nonResourceURLs": [url]} for verb in verbs)
    return out


def _has_all(have: Iterable[str], want: Iterable[str]) -> bool:
    have_set = set(have)
    return all(w in have_set for w in want)


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    for url in wanted:
        if not any(
            o in ("*", url) or (o.endswith("*") and url.startswith(o.rstrip("*"))) for o in owner
        ):
            return False
    return True


def rule_covers(owner: Rule, sub: Rule) -> bool:
    """Does ``owner`` grant everything the simple rule ``sub`` grants (upstream's ruleCovers)?"""
    owner_names = owner.get("resourceNames") or []
    sub_names = sub.get("resourceNames") or []
    return (
        ("*" in (owner.get("verbs") or []) or _has_all(owner.get("verbs") or [], sub["verbs"]))
        and (
            "*" in (owner.get("apiGroups") or [])
            or _has_all(owner.get("apiGroups") or [], sub.get("apiGroups") or [])
        )
        and _resources_cover(owner.get("resources") or [], sub.get("resources") or [])
        and _urls_cover(owner.get("nonResourceURLs") or [], sub.get("nonResourceURLs") or [])
        and (not owner_names or (bool(sub_names) and _has_all(owner_names, sub_names)))
    )


def covers(owner_rules: Iterable[Rule], requested: Iterable[Rule]) -> tuple[bool, list[Rule]]:
    """Whether ``owner_rules`` grant all of ``requested``, and the simple rules they miss."""
    owned = list(owner_rules)
    missing = [
        sub
        for rule in requested
        for sub in breakdown_rule(rule)
        if not any(rule_covers(o, sub) for o in owned)
    ]
    return not missing, missing


def compact_rules(rules: list[Rule]) -> list[Rule]:
    """Merge simple rules on one (group, resource[, name]) into one rule (upstream's CompactRules)."""
    compacted: list[Rule] = []
    simple: dict[tuple[str, str, str | None], Rule] = {}
    for rule in rules:
        key = _simple_key(rule)
        if key is None:
            compacted.append(rule)
        elif key in simple:
            simple[key]["verbs"] = [*simple[key]["verbs"], *(rule.get("verbs") or [])]
        else:
            simple[key] = copy.deepcopy(rule)
    return compacted + list(simple.values())


def _simple_key(rule: Rule) -> tuple[str, str, str | None] | None:
    names = rule.get("resourceNames") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    if len(names) > 1 or rule.get("nonResourceURLs") or len(groups) != 1 or len(resources) != 1:
        return None
    return groups[0], resources[0], names[0] if names else None


def go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote), for the printable text RBAC names hold."""
    return json.dumps(text, ensure_ascii=False)


def go_quote_list(items: Iterable[str]) -> str:
    """Go's %q of a []string: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def compact_string(rule: Rule) -> str:
    """Upstream's PolicyRule.CompactString: ``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``."""
    parts = [
        f"{label}:{go_quote_list(rule[key])}"
        for label, key in (
            ("APIGroups", "apiGroups"),
            ("Resources", "resources"),
            ("NonResourceURLs", "nonResourceURLs"),
            ("ResourceNames", "resourceNames"),
            ("Verbs", "verbs"),
        )
        if rule.get(key)
    ]
    return "{" + ", ".join(parts) + "}"


def escalation_message(user: UserInfo, missing: list[Rule]) -> str:
    described = sorted({compact_string(r) for r in compact_rules(missing)})
    return (
        f"user {go_quote(user.name)} (groups={go_quote_list(user.groups)}) is attempting to "
        "grant RBAC permissions not currently held:\n" + "\n".join(described)
    )


class EscalationCheck:
    """Admission plugin: no granting of permissions one does not hold (policybased storage).

    Creating or updating a Role/ClusterRole needs every rule it grants, or the
    ``escalate`` verb on it; a binding needs every rule of its role, or the
    ``bind`` verb on that role. ``system:masters`` is exempt. An aggregationRule
    can gather anything, so setting one needs full authority.
    """

    def __init__(self, authorizer: RBACAuthorizer) -> None:
        self.authorizer = authorizer

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        info = store.info
        if info.group != RBAC_GROUP or operation not in ("CREATE", "UPDATE"):
            return
        if PRIVILEGED_GROUP in ctx.user.groups:
            return
        if old is not None and _only_gc_fields_changed(obj, old):
            return
        if info.plural in ("roles", "clusterroles"):
            self._check_role(info.plural, obj, ctx.user)
        elif info.plural in _BINDINGS:
            self._check_binding(info.plural, obj, ctx.user)

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        return None

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        return None

    def _allowed(self, user: UserInfo, verb: str, plural: str, namespace: str, name: str) -> bool:
        attrs = Attributes(
            user=user,
            verb=verb,
            api_group=RBAC_GROUP,
            resource=plural,
            namespace=namespace,
            name=name,
        )
        return self.authorizer.authorize(attrs)[0] == "Allow"

    def _check_role(self, plural: str, obj: Object, user: UserInfo) -> None:
        namespace, name = _meta(obj)
        if self._allowed(user, "escalate", plural, namespace, name):
            return
        self._confirm(user, namespace, obj.get("rules") or [], plural, name)
        if plural == "clusterroles" and obj.get("aggregationRule"):
            held, _ = covers(self.authorizer.policy_rules(user, namespace), FULL_AUTHORITY)
            if not held:
                raise errors.forbidden(
                    errors.GroupResource(RBAC_GROUP, plural),
                    name,
                    "must have cluster-admin privileges to use the aggregationRule",
                )

    def _check_binding(self, plural: str, obj: Object, user: UserInfo) -> None:
        namespace, name = _meta(obj)
        ref = obj.get("roleRef") or {}
        ref_plural = _ROLE_KIND_PLURAL.get(ref.get("kind", ""))
        if ref_plural and ref.get("apiGroup", RBAC_GROUP) == RBAC_GROUP:
            if self._allowed(user, "bind", ref_plural, namespace, ref.get("name", "")):
                return
        try:
            rules = self.authorizer.index.role_ref_rules(ref, namespace)
        except KeyError as exc:
            raise errors.bad_request(str(exc.args[0])) from None
        self._confirm(user, namespace, rules, plural, name)

    def _confirm(
        self, user: UserInfo, namespace: str, rules: list[Rule], plural: str, name: str
    ) -> None:
        held, missing = covers(self.authorizer.policy_rules(user, namespace), rules)
        if not held:
            raise errors.forbidden(
                errors.GroupResource(RBAC_GROUP, plural), name, escalation_message(user, missing)
            )


_GC_FIELDS = ("ownerReferences", "finalizers")


def _only_gc_fields_changed(obj: Object, old: Object) -> bool:
    """Upstream's IsOnlyMutatingGCFields: only ownerReferences/finalizers differ."""

    def strip(o: Object) -> Object:
        meta = o.get("metadata") or {}
        kept = {k: meta.get(k) or None for k in ("name", "namespace", "labels", "annotations")}
        body = {k: v for k, v in o.items() if k not in ("metadata", "apiVersion", "kind")}
        return {"metadata": kept, **body}

    return strip(obj) == strip(old)
