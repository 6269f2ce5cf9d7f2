"""Bad values as upstream's flowcontrol validation prints them.

Upstream validates (and reports) its *internal* Go structs, which json.Marshal
renders without json tags: Go field names, every field present, nil pointers
and nil slices as null. ``go_json`` renders a wire-form value that way, for
the messages that show a whole struct (a mandatory object's spec, a
distinguisher method).
"""

from __future__ import annotations

from typing import Any

import orjson

# Each layout lists (wire key, Go name, kind); a kind is a scalar ("str", "int",
# "bool"), "[]" + a kind (a slice), "*" + a kind (a pointer) or a struct name.
_LAYOUTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "FlowSchemaSpec": (
        ("priorityLevelConfiguration", "PriorityLevelConfiguration", "PriorityLevelReference"),
        ("matchingPrecedence", "MatchingPrecedence", "int"),
        ("distinguisherMethod", "DistinguisherMethod", "*FlowDistinguisherMethod"),
        ("rules", "Rules", "[]PolicyRulesWithSubjects"),
    ),
    "PriorityLevelReference": (("name", "Name", "str"),),
    "FlowDistinguisherMethod": (("type", "Type", "str"),),
    "PolicyRulesWithSubjects": (
        ("subjects", "Subjects", "[]Subject"),
        ("resourceRules", "ResourceRules", "[]ResourcePolicyRule"),
        ("nonResourceRules", "NonResourceRules", "[]NonResourcePolicyRule"),
    ),
    "Subject": (
        ("kind", "Kind", "str"),
        ("user", "User", "*Named"),
        ("group", "Group", "*Named"),
        ("serviceAccount", "ServiceAccount", "*ServiceAccountSubject"),
    ),
    "Named": (("name", "Name", "str"),),
    "ServiceAccountSubject": (("namespace", "Namespace", "str"), ("name", "Name", "str")),
    "ResourcePolicyRule": (
        ("verbs", "Verbs", "[]str"),
        ("apiGroups", "APIGroups", "[]str"),
        ("resources", "Resources", "[]str"),
        ("clusterScope", "ClusterScope", "bool"),
        ("namespaces", "Namespaces", "[]str"),
    ),
    "NonResourcePolicyRule": (
        ("verbs", "Verbs", "[]str"),
        ("nonResourceURLs", "NonResourceURLs", "[]str"),
    ),
    "PriorityLevelConfigurationSpec": (
        ("type", "Type", "str"),
        ("limited", "Limited", "*LimitedPriorityLevelConfiguration"),
        ("exempt", "Exempt", "*ExemptPriorityLevelConfiguration"),
    ),
    "LimitedPriorityLevelConfiguration": (
        ("nominalConcurrencyShares", "NominalConcurrencyShares", "int"),
        ("limitResponse", "LimitResponse", "LimitResponse"),
        ("lendablePercent", "LendablePercent", "*int"),
        ("borrowingLimitPercent", "BorrowingLimitPercent", "*int"),
    ),
    "ExemptPriorityLevelConfiguration": (
        ("nominalConcurrencyShares", "NominalConcurrencyShares", "*int"),
        ("lendablePercent", "LendablePercent", "*int"),
    ),
    "LimitResponse": (("type", "Type", "str"), ("queuing", "Queuing", "*QueuingConfiguration")),
    "QueuingConfiguration": (
        ("queues", "Queues", "int"),
        ("handSize", "HandSize", "int"),
        ("queueLengthLimit", "QueueLengthLimit", "int"),
    ),
}
_ZEROS: dict[str, Any] = {"str": "", "int": 0, "bool": False}


def _go_shaped(value: Any, kind: str) -> Any:
    if kind.startswith("[]"):
        return None if value is None else [_go_shaped(v, kind[2:]) for v in _list(value)]
    if kind.startswith("*"):
        return None if value is None else _go_shaped(value, kind[1:])
    if kind in _ZEROS:
        return _ZEROS[kind] if value is None else value
    section = _dict(value)
    return {go: _go_shaped(section.get(key), sub) for key, go, sub in _LAYOUTS[kind]}


class GoJSON:
    """A bad value rendered as Go's json.Marshal renders upstream's internal struct."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_HTML_ESCAPES = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"))


def go_json(value: Any, struct: str) -> GoJSON:
    """``value`` (wire form) as upstream's message shows the internal ``struct``."""
    text = orjson.dumps(_go_shaped(value, struct)).decode()
    for char, escape in _HTML_ESCAPES:  # Go's encoder escapes these; orjson does not
        text = text.replace(char, escape)
    return GoJSON(text)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
