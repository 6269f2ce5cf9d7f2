"""flowcontrol.apiserver.k8s.io/v1 rules without a server: defaults, validation, ensurer, rows.

The HTTPS behaviour is in test_flowcontrol_api.py; this file covers the
cases that are many and cheap (each validation message, each ensurer
decision) where starting a server per case would add nothing.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from pathlib import Path
from typing import Any

import pytest

from kajitori.api.flowcontrol_v1 import bootstrap, defaults, validation
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.registry.flowcontrol import dangling, ensurer, flowschemas
from kajitori.registry.flowcontrol import prioritylevelconfigurations as levels
from kajitori.registry.generic.store import ListOptions

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def _level(name: str, spec: Object) -> Object:
    return {"metadata": {"name": name}, "spec": spec}


def _queued(queues: int, hand: int, length: int = 50) -> Object:
    return {
        "type": "Limited",
        "limited": {
            "nominalConcurrencyShares": 1,
            "limitResponse": {
                "type": "Queue",
                "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length},
            },
        },
    }


# ----- defaults and the bootstrap objects ---------------------------------------------


def test_bootstrap_objects_are_valid_and_already_defaulted() -> None:
    """As upstream's internalbootstrap test: defaulting changes none of them."""
    for fs in bootstrap.mandatory_flow_schemas() + bootstrap.suggested_flow_schemas():
        before = copy.deepcopy(fs)
        defaults.set_defaults_flow_schema(fs)
        assert fs == before
        assert validation.validate_flow_schema(fs) == []
    for pl in bootstrap.mandatory_priority_levels() + bootstrap.suggested_priority_levels():
        before = copy.deepcopy(pl)
        defaults.set_defaults_priority_level_configuration(pl)
        assert pl == before
        assert validation.validate_priority_level_configuration(pl) == []


def test_defaults_keep_explicit_pointer_zeros_and_fill_plain_zeros() -> None:
    pl = _level("x", _queued(0, 0, 0))
    pl["spec"]["limited"]["nominalConcurrencyShares"] = 0
    pl["spec"]["limited"]["lendablePercent"] = 0
    defaults.set_defaults_priority_level_configuration(pl)
    limited = pl["spec"]["limited"]
    assert (limited["nominalConcurrencyShares"], limited["lendablePercent"]) == (0, 0)
    assert limited["limitResponse"]["queuing"] == {
        "queues": 64,
        "handSize": 8,
        "queueLengthLimit": 50,
    }
    exempt = _level("exempt", {"type": "Exempt", "exempt": {}})
    defaults.set_defaults_priority_level_configuration(exempt)
    assert exempt["spec"]["exempt"] == {"nominalConcurrencyShares": 0, "lendablePercent": 0}
    fs: Object = {"spec": {"matchingPrecedence": 0}}
    defaults.set_defaults_flow_schema(fs)
    assert fs["spec"]["matchingPrecedence"] == 1000


# ----- FlowSchema validation ------------------------------------------------------------


def _schema(name: str = "fs", **spec: Any) -> Object:
    body: Object = {
        "priorityLevelConfiguration": {"name": "pl"},
        "matchingPrecedence": 500,
        "rules": [
            {
                "subjects": [{"kind": "Group", "group": {"name": "g"}}],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}],
            }
        ],
    }
    body.update(spec)
    return {"metadata": {"name": name}, "spec": body}


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [
        pytest.param(
            "fs",
            {"matchingPrecedence": -3},
            ["spec.matchingPrecedence: Invalid value: -3: must be a positive value"],
            id="negative-precedence",
        ),
        pytest.param(
            "exempt-ish",
            {"matchingPrecedence": 1},
            [
                "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' "
                "may have matchingPrecedence 1"
            ],
            id="precedence-1-reserved",
        ),
        pytest.param(
            "fs",
            {"priorityLevelConfiguration": {}},
            [
                "spec.priorityLevelConfiguration.name: Required value: must reference a "
                "priority level"
            ],
            id="no-level",
        ),
        pytest.param(
            "fs",
            {"rules": [{"resourceRules": [{"verbs": ["get"]}]}]},
            [
                "spec.rules[0].subjects: Required value: subjects must contain at least one value",
                "spec.rules[0].resourceRules[0].apiGroups: Required value: resource rules must "
                "supply at least one api group",
                "spec.rules[0].resourceRules[0].resources: Required value: resource rules must "
                "supply at least one resource",
                "spec.rules[0].resourceRules[0].namespaces: Required value: resource rules that "
                "are not cluster scoped must supply at least one namespace",
            ],
            id="empty-resource-rule",
        ),
        pytest.param(
            "fs",
            {
                "rules": [
                    {
                        "subjects": [
                            {"kind": "User", "user": {}, "serviceAccount": {"name": "a"}},
                            {"kind": "Group"},
                            {
                                "kind": "ServiceAccount",
                                "serviceAccount": {"name": "Bad", "namespace": "ns"},
                            },
                        ],
                        "resourceRules": [
                            {
                                "verbs": [],
                                "apiGroups": ["*", "apps"],
                                "resources": ["*"],
                                "namespaces": ["*", "default"],
                            }
                        ],
                    }
                ]
            },
            [
                "spec.rules[0].subjects[0].user.name: Required value",
                "spec.rules[0].subjects[0].serviceAccount: Forbidden: serviceAccount is forbidden "
                "when subject kind is not 'ServiceAccount'",
                "spec.rules[0].subjects[1].group: Required value: group is required when subject "
                "kind is 'Group'",
                'spec.rules[0].subjects[2].serviceAccount.name: Invalid value: "Bad": a lowercase '
                "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                "'.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                "regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.rules[0].resourceRules[0].verbs: Required value: verbs must contain at "
                "least one value",
                'spec.rules[0].resourceRules[0].apiGroups: Invalid value: ["*","apps"]: if \'*\' '
                "is present, must not specify other api groups",
                'spec.rules[0].resourceRules[0].namespaces: Invalid value: ["*","default"]: if '
                "'*' is present, must not specify other namespaces",
            ],
            id="subjects-and-wildcards",
        ),
        pytest.param(
            "fs",
            {
                "rules": [
                    {
                        "subjects": [{"kind": "Group", "group": {"name": "g"}}],
                        "nonResourceRules": [
                            {"verbs": ["*"], "nonResourceURLs": ["*", "/x"]},
                            {"verbs": ["get"], "nonResourceURLs": ["", "/a b", "/a/*", "/", "/*"]},
                            {"verbs": ["get"], "nonResourceURLs": []},
                        ],
                    }
                ]
            },
            [
                'spec.rules[0].nonResourceRules[0].nonResourceURLs: Invalid value: ["*","/x"]: '
                "if '*' is present, must not specify other non-resource URLs",
                'spec.rules[0].nonResourceRules[1].nonResourceURLs[0]: Invalid value: "": must '
                "not be empty",
                'spec.rules[0].nonResourceRules[1].nonResourceURLs[1]: Invalid value: "/a b": '
                "must not contain white-space",
                "spec.rules[0].nonResourceRules[2].nonResourceURLs: Required value: "
                "nonResourceURLs must contain at least one value",
            ],
            id="non-resource-urls",
        ),
    ],
)
def test_flow_schema_messages(name: str, spec: Object, expected: list[str]) -> None:
    assert _messages(validation.validate_flow_schema(_schema(name, **spec))) == expected


def test_flow_schema_conditions_and_mandatory_spec() -> None:
    fs = _schema()
    fs["status"] = {"conditions": [{"type": "A"}, {"type": "A"}, {"status": "True"}]}
    assert _messages(validation.validate_flow_schema(fs)) == [
        'status.conditions[1].type: Duplicate value: "A"',
        "status.conditions[2].type: Required value: must not be empty",
    ]
    exempt = bootstrap.mandatory_flow_schemas()[0]
    # Zero values spelled out compare equal, as Go's semantic equality sees them.
    exempt["spec"]["distinguisherMethod"] = None
    exempt["spec"]["rules"][0]["nonResourceRules"][0]["verbs"] = ["*"]
    assert validation.validate_flow_schema(exempt) == []
    exempt["spec"]["rules"][0]["subjects"][0]["group"]["name"] = "wheel"
    del exempt["spec"]["rules"][0]["resourceRules"]
    # The value as upstream prints its internal struct: Go names, nil as null.
    assert _messages(validation.validate_flow_schema(exempt)) == [
        'spec: Invalid value: {"PriorityLevelConfiguration":{"Name":"exempt"},'
        '"MatchingPrecedence":1,"DistinguisherMethod":null,"Rules":[{"Subjects":[{"Kind":'
        '"Group","User":null,"Group":{"Name":"wheel"},"ServiceAccount":null}],'
        '"ResourceRules":null,"NonResourceRules":[{"Verbs":["*"],"NonResourceURLs":["*"]}]}]}'
        ": spec of 'exempt' must equal the fixed value"
    ]


# ----- PriorityLevelConfiguration validation --------------------------------------------


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [
        pytest.param(
            "pl",
            _queued(8, 9),
            [
                "spec.limited.limitResponse.queuing.handSize: Invalid value: 9: should not be "
                "greater than queues (8)"
            ],
            id="hand-bigger-than-deck",
        ),
        pytest.param(
            "pl",
            _queued(10 * 1000 * 1000 + 1, 1),
            [
                "spec.limited.limitResponse.queuing.queues: Invalid value: 10000001: must not be "
                "greater than 10000000"
            ],
            id="too-many-queues",
        ),
        pytest.param(
            "pl",
            _queued(128, 8),
            [],
            id="entropy-56-bits-ok",
        ),
        pytest.param(
            "pl",
            {
                "type": "Limited",
                "exempt": {},
                "limited": {
                    "nominalConcurrencyShares": 1,
                    "borrowingLimitPercent": -1,
                    "limitResponse": {"type": "Reject", "queuing": {}},
                },
            },
            [
                "spec.exempt: Forbidden: must be nil if the type is Limited",
                "spec.limited.limitResponse.queuing: Forbidden: must be nil if "
                "limited.limitResponse.type is not Limited",
                "spec.limited.borrowingLimitPercent: Invalid value: -1: if specified, must be a "
                "non-negative integer",
            ],
            id="reject-with-queuing",
        ),
        pytest.param(
            "pl",
            {
                "type": "Limited",
                "limited": {"nominalConcurrencyShares": 1, "limitResponse": {"type": "Queue"}},
            },
            [
                "spec.limited.limitResponse.queuing: Required value: must not be empty if "
                "limited.limitResponse.type is Limited"
            ],
            id="queue-without-queuing",
        ),
        pytest.param(
            "pl",
            {"type": "Limited"},
            ["spec.limited: Required value: must not be empty when type is Limited"],
            id="limited-without-section",
        ),
        pytest.param(
            "exempt",
            {"type": "Exempt", "exempt": {"nominalConcurrencyShares": -1, "lendablePercent": 0}},
            [
                "spec.exempt.nominalConcurrencyShares: Invalid value: -1: must be a non-negative "
                "integer"
            ],
            id="exempt-negative-shares",
        ),
    ],
)
def test_priority_level_messages(name: str, spec: Object, expected: list[str]) -> None:
    assert (
        _messages(validation.validate_priority_level_configuration(_level(name, spec))) == expected
    )


def test_v1beta3_round_trip_annotation_is_forbidden() -> None:
    pl = _level("pl", _queued(64, 8))
    pl["metadata"]["annotations"] = {validation.PRESERVE_ZERO_SHARES_ANNOTATION: ""}
    assert _messages(validation.validate_priority_level_configuration(pl)) == [
        "metadata.annotations: Forbidden: annotation "
        "'flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares' is forbidden"
    ]


def test_required_entropy_bits_is_upstreams() -> None:
    assert validation.required_entropy_bits(128, 6) == 42
    assert validation.required_entropy_bits(100, 9) == 60  # 59.79 rounds up to the limit


# ----- the ensurer's decisions ------------------------------------------------------------


def _pl_equalish(wanted: Object, actual: Object) -> bool:
    return ensurer._priority_level_spec_equalish(wanted, actual)


def _stored(obj: Object, *, generation: int = 1, annotation: str | None = "true") -> Object:
    current = copy.deepcopy(obj)
    current["metadata"]["generation"] = generation
    current["metadata"].pop("annotations", None)
    if annotation is not None:
        current["metadata"]["annotations"] = {bootstrap.AUTO_UPDATE_ANNOTATION: annotation}
    return current


def test_parse_bool_is_gos() -> None:
    assert [ensurer.parse_bool(v) for v in ("1", "t", "TRUE", "True", "0", "F", "no", None)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        None,
        None,
    ]


def test_mandatory_objects_get_spec_and_annotation_back() -> None:
    wanted = bootstrap.mandatory_priority_levels()[0]  # catch-all
    current = _stored(wanted, generation=4, annotation="false")
    current["spec"]["limited"]["nominalConcurrencyShares"] = 9
    revised = ensurer.revise(current, wanted, mandatory=True, spec_equalish=_pl_equalish)
    assert revised is not None
    assert revised["spec"] == wanted["spec"]
    assert revised["metadata"]["annotations"] == {bootstrap.AUTO_UPDATE_ANNOTATION: "true"}
    assert revised["metadata"]["generation"] == 4  # the rest is the stored object's


def test_exempt_level_keeps_its_tuning() -> None:
    wanted = bootstrap.mandatory_priority_levels()[1]
    current = _stored(wanted, generation=2)
    current["spec"]["exempt"] = {"nominalConcurrencyShares": 10, "lendablePercent": 20}
    assert ensurer.revise(current, wanted, mandatory=True, spec_equalish=_pl_equalish) is None


@pytest.mark.parametrize(
    ("generation", "annotation", "spec_restored", "annotation_after"),
    [
        pytest.param(5, "TRUE", True, None, id="true-any-spelling"),
        pytest.param(5, "false", False, None, id="opted-out"),
        pytest.param(1, None, True, "true", id="unannotated-never-edited"),
        pytest.param(2, None, False, "false", id="unannotated-edited"),
        pytest.param(2, "maybe", False, "false", id="unreadable-edited"),
    ],
)
def test_suggested_objects_follow_their_annotation(
    generation: int, annotation: str | None, spec_restored: bool, annotation_after: str | None
) -> None:
    wanted = bootstrap.suggested_priority_levels()[0]  # system
    current = _stored(wanted, generation=generation, annotation=annotation)
    current["spec"]["limited"]["nominalConcurrencyShares"] = 1
    revised = ensurer.revise(current, wanted, mandatory=False, spec_equalish=_pl_equalish)
    if not spec_restored and annotation_after is None:
        assert revised is None
        return
    assert revised is not None
    shares = revised["spec"]["limited"]["nominalConcurrencyShares"]
    assert shares == (30 if spec_restored else 1)
    expected = annotation_after or annotation
    assert revised["metadata"]["annotations"][bootstrap.AUTO_UPDATE_ANNOTATION] == expected


# ----- Dangling conditions and rows -----------------------------------------------------


def test_dangling_condition_replaces_only_its_own_entry() -> None:
    fs = _schema()
    fs["status"] = {"conditions": [{"type": "Other", "status": "True"}]}
    wanted = dangling.desired_condition(fs, frozenset())
    assert wanted["message"] == (
        'This FlowSchema references the PriorityLevelConfiguration object named "pl" but '
        "there is no such object"
    )
    written = dangling.with_condition(fs, wanted, "2025-01-01T00:00:00Z")
    assert [c["type"] for c in written["status"]["conditions"]] == ["Other", "Dangling"]
    assert dangling.is_current(written, wanted)
    found = dangling.desired_condition(written, frozenset({"pl"}))
    assert not dangling.is_current(written, found)
    rewritten = dangling.with_condition(written, found, "2025-01-01T00:00:01Z")
    assert rewritten["status"]["conditions"][1] == {
        "type": "Dangling",
        "status": "False",
        "lastTransitionTime": "2025-01-01T00:00:01Z",
        "reason": "Found",
        "message": 'This FlowSchema references the PriorityLevelConfiguration object named "pl" '
        "and it exists",
    }
    assert fs["status"]["conditions"] == [{"type": "Other", "status": "True"}]  # not mutated


def test_rows_before_status_and_for_a_rejecting_level() -> None:
    fs = _schema()
    fs["metadata"]["creationTimestamp"] = "2025-01-01T11:00:00Z"
    assert list(flowschemas.flow_schema_row(fs, NOW)) == ["fs", "pl", 500, "<none>", "60m", "?"]
    catch_all = bootstrap.mandatory_priority_levels()[0]
    assert list(levels.priority_level_row(catch_all, NOW)) == [
        "catch-all",
        "Limited",
        5,
        "<none>",
        "<none>",
        "<none>",
        "<unknown>",
    ]
    ordered = sorted(
        [_schema("b"), _schema("a"), _schema("z", matchingPrecedence=2)],
        key=flowschemas.precedence_order,
    )
    assert [o["metadata"]["name"] for o in ordered] == ["z", "a", "b"]


async def test_a_restart_rewrites_no_apf_object(tmp_path: Path) -> None:
    """Objects and conditions already current cost no write: same resourceVersions."""
    config = APIServerConfig(data_dir=tmp_path, port=0)
    first = await _settled_versions(config)
    assert len(first) == 19  # 8 priority levels, 11 FlowSchemas
    assert await _settled_versions(config) == first


async def _settled_versions(config: APIServerConfig) -> dict[tuple[str, str], str]:
    process = APIServerProcess(config)
    await process.start()
    try:
        assert process.apf_ensurer is not None and process.apf_dangling is not None
        await asyncio.wait_for(process.apf_ensurer.ensured.wait(), 10)
        await asyncio.wait_for(process.apf_dangling.reconciled.wait(), 10)
        await asyncio.wait_for(_every_condition_written(process), 10)
        versions = {}
        for store in (process.apf_ensurer.flow_schemas, process.apf_ensurer.priority_levels):
            for obj in (await store.list("", ListOptions())).items:
                key = (store.info.plural, obj["metadata"]["name"])
                versions[key] = obj["metadata"]["resourceVersion"]
        return versions
    finally:
        await process.stop()


async def _every_condition_written(process: APIServerProcess) -> None:
    assert process.apf_ensurer is not None
    store = process.apf_ensurer.flow_schemas
    while True:
        listed = (await store.list("", ListOptions())).items
        if all(dangling.current_condition(fs) for fs in listed):
            return
        await asyncio.sleep(0.02)
