"""Defaults of flowcontrol.apiserver.k8s.io/v1 (upstream: pkg/apis/flowcontrol/v1/defaults.go).

A FlowSchema's ``matchingPrecedence`` 0 (or absent) becomes 1000. A priority
level's ``limited`` section gets ``nominalConcurrencyShares`` 30 and
``lendablePercent`` 0 when absent, its queuing parameters 64 queues, hand
size 8 and queue length limit 50 when 0; an ``exempt`` section gets 0 for
both of its fields. Only sections that are present are defaulted, as
upstream's generated SetObjectDefaults functions walk set pointers only.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]

FLOW_SCHEMA_DEFAULT_MATCHING_PRECEDENCE = 1000
DEFAULT_HAND_SIZE = 8
DEFAULT_QUEUES = 64
DEFAULT_QUEUE_LENGTH_LIMIT = 50
DEFAULT_NOMINAL_CONCURRENCY_SHARES = 30


def set_defaults_flow_schema(obj: Object) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict) and not spec.get("matchingPrecedence"):
        spec["matchingPrecedence"] = FLOW_SCHEMA_DEFAULT_MATCHING_PRECEDENCE


def set_defaults_priority_level_configuration(obj: Object) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    exempt = spec.get("exempt")
    if isinstance(exempt, dict):
        _default_none(exempt, "nominalConcurrencyShares", 0)
        _default_none(exempt, "lendablePercent", 0)
    limited = spec.get("limited")
    if not isinstance(limited, dict):
        return
    _default_none(limited, "nominalConcurrencyShares", DEFAULT_NOMINAL_CONCURRENCY_SHARES)
    _default_none(limited, "lendablePercent", 0)
    response = limited.get("limitResponse")
    queuing = response.get("queuing") if isinstance(response, dict) else None
    if isinstance(queuing, dict):
        _default_zero(queuing, "handSize", DEFAULT_HAND_SIZE)
        _default_zero(queuing, "queues", DEFAULT_QUEUES)
        _default_zero(queuing, "queueLengthLimit", DEFAULT_QUEUE_LENGTH_LIMIT)


def _default_none(section: Object, key: str, value: int) -> None:
    # A pointer field: only a missing (nil) value is defaulted; an explicit 0 stays.
    if section.get(key) is None:
        section[key] = value


def _default_zero(section: Object, key: str, value: int) -> None:
    # A plain int32 field: Go cannot tell 0 from absent, so both are defaulted.
    if not section.get(key):
        section[key] = value
