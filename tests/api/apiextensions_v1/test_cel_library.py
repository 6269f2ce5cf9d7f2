"""Kubernetes' CEL libraries, optional syntax, optionalOldSelf and cost limits on CRDs."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.api.apiextensions_v1 import cel, defaults, validation
from kajitori.machinery import errors
from kajitori.registry import install
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import Store
from kajitori.server import crds, openapi
from kajitori.server.apis import APIRegistry
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
CTX = RequestContext(user=UserInfo("admin", ("system:masters",)))


def _schema(*rules: Object, **spec_schema: Any) -> Object:
    spec: Object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    spec.update(spec_schema)
    spec["x-kubernetes-validations"] = list(rules)
    return {"type": "object", "properties": {"spec": spec}}


def _errors(rule: Object, spec: Object, old: Object | None = None) -> list[str]:
    old_obj = None if old is None else {"spec": old}
    return [str(e) for e in cel.validate({"spec": spec}, _schema(rule), old_obj)]


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param("[1, 2, 3].isSorted() && ![2, 1].isSorted()", id="lists-isSorted"),
        pytest.param(
            "self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3 "
            "&& self.l.indexOf(2) == 1 && self.l.lastIndexOf(3) == 2",
            id="lists-aggregates",
        ),
        pytest.param(
            "'abc 123'.find('[0-9]+') == '123' && 'a1b2'.findAll('[0-9]') == ['1', '2'] "
            "&& 'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
            id="regex",
        ),
        pytest.param(
            "url('https://example.com:80/p?x=1').getScheme() == 'https' "
            "&& url('https://example.com:80/p').getHost() == 'example.com:80' "
            "&& url('https://example.com:80/p').getHostname() == 'example.com' "
            "&& url('https://e.com:80/p').getPort() == '80' "
            "&& url('https://e.com/a%20b').getEscapedPath() == '/a%20b' "
            "&& url('https://e.com/?k=v').getQuery() == {'k': ['v']} "
            "&& !isURL('x y') && isURL('/p')",
            id="urls",
        ),
        pytest.param(
            "'hello'.charAt(1) == 'e' && 'hello'.indexOf('l') == 2 "
            "&& 'hello'.lastIndexOf('l') == 3 && 'HeLLo'.lowerAscii() == 'hello' "
            "&& 'hi'.upperAscii() == 'HI' && 'aaa'.replace('a', 'b', 2) == 'bba' "
            "&& 'a,b'.split(',') == ['a', 'b'] && 'hello'.substring(1, 3) == 'el' "
            "&& '  x '.trim() == 'x' && ['a', 'b'].join('-') == 'a-b' "
            "&& strings.quote('a') == '\"a\"' && 'n=%d s=%s'.format([1, 'x']) == 'n=1 s=x'",
            id="strings",
        ),
        pytest.param(
            "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('1') == quantity('1000m') "
            "&& quantity('500m').add(quantity('500m')) == quantity('1') "
            "&& quantity('2').sub(1).asInteger() == 1 && isQuantity('1Ki') && !isQuantity('x') "
            "&& quantity('1').compareTo(quantity('2')) == -1 && !quantity('1.5').isInteger() "
            "&& quantity('-1').sign() == -1 && quantity('1.5').asApproximateFloat() == 1.5",
            id="quantity",
        ),
        pytest.param(
            "ip('10.0.0.1').family() == 4 && isIP('::1') && !isIP('1.2.3') "
            "&& ip('127.0.0.1').isLoopback() && cidr('10.0.0.0/8').containsIP('10.1.2.3') "
            "&& cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') "
            "&& cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8') "
            "&& cidr('10.0.0.0/8').prefixLength() == 8 && isCIDR('10.0.0.0/8') "
            "&& cidr('10.0.0.1/8').ip() == ip('10.0.0.1') && ip.isCanonical('10.0.0.1') "
            "&& ip('0.0.0.0').isUnspecified() && ip('8.8.8.8').isGlobalUnicast() "
            "&& ip('169.254.1.1').isLinkLocalUnicast()",
            id="ip-and-cidr",
        ),
        pytest.param(
            "semver('1.2.3').major() == 1 && semver('1.2.3').isLessThan(semver('1.10.0')) "
            "&& isSemver('v1.2', true) && !isSemver('v1.2') "
            "&& semver('1.0.0-alpha').compareTo(semver('1.0.0')) == -1",
            id="semver",
        ),
        pytest.param(
            "!format.dns1123Label().validate('abc').hasValue() "
            "&& format.dns1123Label().validate('ABC').hasValue() "
            "&& format.named('uuid').hasValue() && !format.named('nope').hasValue()",
            id="format",
        ),
        pytest.param(
            "self.?a.orValue('d') == 'd' && self.?b.orValue('d') == 'x' "
            "&& !self.?a.c.hasValue() && self.m[?'k'].orValue(0) == 1 "
            "&& optional.of(1).hasValue()",
            id="optional-syntax",
        ),
        pytest.param(
            "sets.contains([1, 2, 3], [1, 2]) && sets.intersects([1], [1, 2]) "
            "&& sets.equivalent([1, 2], [2, 1])",
            id="sets",
        ),
    ],
)
def test_kubernetes_libraries_evaluate_as_upstream(rule: str) -> None:
    """Each extension library's functions give upstream's results inside a rule."""
    assert _errors({"rule": rule}, {"l": [1, 2, 3], "b": "x", "m": {"k": 1}}) == []


@pytest.mark.parametrize(
    ("rule", "spec", "expected"),
    [
        pytest.param(
            {"rule": "quantity(self.q).isLessThan(quantity('1Gi'))"},
            {"q": "nope"},
            'spec: Invalid value: "object": quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' evaluating rule: "
            "quantity(self.q).isLessThan(quantity('1Gi'))",
            id="library-error",
        ),
        pytest.param(
            {"rule": "self.x + 1 > 0", "message": "x must be positive"},
            {"x": "s"},
            "spec: Invalid value: \"object\": 'no such overload': call arguments did not match "
            "a supported operator, function or macro signature for rule: x must be positive",
            id="no-such-overload-names-message",
        ),
        pytest.param(
            {"rule": "self.nope == 1"},
            {},
            'spec: Invalid value: "object": no such key: nope evaluating rule: self.nope == 1',
            id="no-such-key",
        ),
        pytest.param(
            {"rule": "quantity(self.q).isLessThan(quantity('1Gi'))", "fieldPath": ".q"},
            {"q": "2Gi"},
            'spec.q: Invalid value: "object": failed rule: '
            "quantity(self.q).isLessThan(quantity('1Gi'))",
            id="failed-rule-with-fieldPath",
        ),
        pytest.param(
            {
                "rule": "false",
                "messageExpression": "'bad: ' + self.name",
                "reason": "FieldValueRequired",
            },
            {"name": "n"},
            "spec: Required value: bad: n",
            id="messageExpression-and-reason",
        ),
    ],
)
def test_failures_render_upstreams_messages(rule: Object, spec: Object, expected: str) -> None:
    """Evaluation errors and false results read as the apiserver's field errors."""
    assert _errors(rule, spec) == [expected]


def test_a_scalar_nodes_error_shows_its_value() -> None:
    """Upstream shows a string or number node's own value, not its type."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 3"}]}
        },
    }
    assert [str(e) for e in cel.validate({"name": "long"}, schema)] == [
        'name: Invalid value: "long": failed rule: self.size() < 3'
    ]


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        pytest.param(None, [], id="create-sees-none"),
        pytest.param({"n": 5}, ['spec: Invalid value: "object": may only grow'], id="update"),
        pytest.param({"n": 1}, [], id="update-growing"),
    ],
)
def test_optional_old_self_runs_on_create_with_none(
    old: Object | None, expected: list[str]
) -> None:
    """With optionalOldSelf the transition rule runs on create too, oldSelf being an optional."""
    rule = {
        "rule": "!oldSelf.hasValue() || self.n >= oldSelf.value().n",
        "optionalOldSelf": True,
        "message": "may only grow",
    }
    assert _errors(rule, {"n": 3}, old) == expected


LIMITS: Object = {
    "type": "object",
    "properties": {
        "limits": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.value >= oldSelf.value", "message": "may only grow"}
                ],
            },
        }
    },
}


def test_transition_rules_on_map_list_items_see_the_item_with_the_same_key() -> None:
    """Items of a list-type=map list correlate by key: an item new in this update has no oldSelf."""
    old = {"limits": [{"name": "a", "value": 5}, {"name": "b", "value": 1}]}
    new = {"limits": [{"name": "b", "value": 0}, {"name": "c", "value": 0},
                      {"name": "a", "value": 6}]}  # fmt: skip
    assert [str(e) for e in cel.validate(new, LIMITS, old)] == [
        'limits[0]: Invalid value: "object": may only grow'
    ]


# ----- CRD validation: rule companions and cost limits ------------------------------------------


def _crd(schema: Object) -> Object:
    crd: Object = {
        "metadata": {"name": "foos.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "foos", "kind": "Foo"},
            "versions": [
                {"name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }  # fmt: skip
    defaults.set_defaults_crd(crd)
    return crd


RULES = "spec.versions[0].schema.openAPIV3Schema.properties[tags].x-kubernetes-validations[0]"


def _tags(rule: str, items: Object, **bounds: Any) -> Object:
    tags = {"type": "array", "items": items, "x-kubernetes-validations": [{"rule": rule}], **bounds}
    return {"type": "object", "properties": {"tags": tags}}


def test_an_unbounded_rule_exceeds_the_estimated_cost_budget() -> None:
    """A regex over every item of an unbounded list of unbounded strings is refused, as upstream."""
    crd = _crd(_tags("self.all(x, x.matches('^[a-z]+$'))", {"type": "string"}))
    assert [str(e) for e in validation.validate_crd(crd)] == [
        f"{RULES}.rule: Forbidden: estimated rule cost exceeds budget by factor of more than "
        "100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where "
        "arrays, maps, and strings are declared)",
        f"{RULES}.rule: Forbidden: contributed to estimated rule cost total exceeding cost "
        "limit for entire OpenAPIv3 schema",
        "spec.versions[0].schema.openAPIV3Schema: Forbidden: x-kubernetes-validations estimated "
        "rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x "
        "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where "
        "arrays, maps, and strings are declared)",
    ]


def test_bounds_bring_the_same_rule_within_budget() -> None:
    """maxItems and maxLength make the same rule cheap enough."""
    crd = _crd(
        _tags("self.all(x, x.matches('^[a-z]+$'))", {"type": "string", "maxLength": 63},
              maxItems=100)
    )  # fmt: skip
    assert validation.validate_crd(crd) == []


def test_a_quadratic_rule_over_a_per_item_node_multiplies_by_cardinality() -> None:
    """A rule on list items costs its own estimate times how many items there can be."""
    items = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.name.startsWith('a')"}],
    }
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": items}}}
    errs = [str(e) for e in validation.validate_crd(_crd(schema))]
    assert errs[0].startswith(
        "spec.versions[0].schema.openAPIV3Schema.properties[tags].items."
        "x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget"
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param({"rule": " "}, "rule: Required value: rule is not specified", id="empty-rule"),
        pytest.param(
            {"rule": "true", "reason": "Nope"},
            'reason: Unsupported value: "Nope": supported values: "FieldValueDuplicate", '
            '"FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
            id="reason",
        ),
        pytest.param(
            {"rule": "true", "fieldPath": ".nope"},
            'fieldPath: Invalid value: ".nope": fieldPath must be a valid path',
            id="fieldPath-not-in-schema",
        ),
        pytest.param(
            {"rule": "true &&\ntrue"},
            "message: Required value: message must be specified if rule contains line breaks",
            id="multi-line-rule-needs-message",
        ),
        pytest.param(
            {"rule": "true", "optionalOldSelf": True},
            "optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule",
            id="optionalOldSelf-without-oldSelf",
        ),
    ],
)
def test_rule_companions_are_checked(rule: Object, expected: str) -> None:
    """reason, optionalOldSelf and an empty rule are refused with upstream's messages."""
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object"}},
        "x-kubernetes-validations": [rule],
    }
    assert [str(e) for e in validation.validate_crd(_crd(schema))] == [
        f"spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].{expected}"
    ]


# ----- end to end through the generic store ------------------------------------------------------

MACHINES: Object = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "machines.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "machines", "kind": "Machine"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "quantity(self.memory).isLessThan(quantity('64Gi'))",
                                        "message": "memory must be below 64Gi",
                                        "fieldPath": ".memory",
                                    },
                                    {
                                        "rule": "!format.dns1123Label().validate(self.?host.orValue('x')).hasValue()",
                                        "messageExpression": "'bad host: ' + self.host",
                                    },
                                    {
                                        "rule": "!oldSelf.hasValue() || quantity(self.memory).compareTo(quantity(oldSelf.value().memory)) >= 0",
                                        "optionalOldSelf": True,
                                        "message": "memory may not shrink",
                                    },
                                ],
                                "properties": {
                                    "memory": {"type": "string", "maxLength": 16},
                                    "host": {"type": "string", "maxLength": 63},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
async def machines(tmp_path: Path) -> AsyncIterator[Store]:
    """The Machine CRD established on a SQLite registry; its custom resource store."""
    backend = SqliteBackend(tmp_path / "db.sqlite")
    await backend.start()
    registry = APIRegistry(install.all_resources(), backend)
    controller = crds.CRDController(registry, openapi.OpenAPIV3(registry.resources()))
    controller.start()
    try:
        await asyncio.wait_for(controller.wait_synced(), 10)
        crd_store = registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_store is not None
        await crd_store.create("", copy.deepcopy(MACHINES), CTX)
        store = None
        for _ in range(250):
            store = registry.lookup("example.com", "v1", "machines")
            if store is not None:
                break
            await asyncio.sleep(0.02)
        assert isinstance(store, Store)
        yield store
    finally:
        await controller.stop()
        for each in list(registry.stores.values()):
            await each.stop_watch_cache()
        await backend.close()


def _machine(name: str, **spec: Any) -> Object:
    return {"apiVersion": "example.com/v1", "kind": "Machine", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


async def test_custom_resources_are_checked_with_library_rules(machines: Store) -> None:
    """Creates run quantity, format and optional rules; failures are 422s with upstream's text."""
    await machines.create("default", _machine("ok", memory="1Gi", host="db"), CTX)
    with pytest.raises(errors.StatusError) as caught:
        await machines.create("default", _machine("bad", memory="128Gi", host="Not_A_Label"), CTX)
    assert caught.value.code == 422
    assert caught.value.message.endswith(
        '"bad" is invalid: [spec.memory: Invalid value: "object": memory must be below 64Gi, '
        'spec: Invalid value: "object": bad host: Not_A_Label]'
    )


async def test_optional_old_self_rules_see_the_stored_object_on_update(machines: Store) -> None:
    """The optionalOldSelf rule passes on create and compares with the stored object on update."""
    created = await machines.create("default", _machine("m", memory="2Gi"), CTX)
    shrunk = copy.deepcopy(created)
    shrunk["spec"]["memory"] = "1Gi"
    with pytest.raises(errors.StatusError) as caught:
        await machines.update("default", "m", shrunk, CTX)
    assert caught.value.message.endswith(
        '"m" is invalid: spec: Invalid value: "object": memory may not shrink'
    )
