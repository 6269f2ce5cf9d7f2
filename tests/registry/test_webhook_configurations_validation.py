"""Webhook configuration defaults, validation and update ratchets, rule by rule.

Table-driven over ``api.admissionregistration_v1.webhooks`` and the registry
strategy without a server (the HTTPS path is ``test_webhook_configurations.py``).
Expected texts are upstream 1.37's field errors: path, type, value as Go
prints it, detail.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kajitori.api.admissionregistration_v1 import webhooks
from kajitori.registry.admissionregistration import (
    mutatingwebhookconfigurations,
    validatingwebhookconfigurations,
    webhookconfigurations,
)

Object = dict[str, Any]
URL_FORM = "; desired format: https://host[/path]"
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def hook(**overrides: Any) -> Object:
    value: Object = {
        "name": "check.example.com",
        "clientConfig": {"url": "https://hooks.example.com/check"},
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": ["apps"],
                "apiVersions": ["v1"],
                "resources": ["deployments"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    value.update(overrides)
    return value


def config(*hooks: Object, name: str = "config") -> Object:
    return {"metadata": {"name": name}, "webhooks": list(hooks)}


def errors_of(obj: Object, *, mutating: bool = False) -> list[str]:
    return [str(e) for e in webhooks.validate_webhook_configuration(obj, mutating=mutating)]


def rule(**overrides: Any) -> Object:
    value: Object = {
        "operations": ["CREATE"],
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "resources": ["deployments"],
    }
    value.update(overrides)
    return value


def test_a_complete_configuration_is_valid() -> None:
    assert errors_of(config(hook())) == []
    assert errors_of(config(hook(), hook(name="other.example.com")), mutating=True) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"name": "k8s.io"},
            'webhooks[0].name: Invalid value: "k8s.io": should be a domain with at least '
            "three segments separated by dots",
            id="two-segment-name",
        ),
        pytest.param({"name": ""}, "webhooks[0].name: Required value", id="empty-name"),
        pytest.param(
            {"name": "Check.example.com"},
            'webhooks[0].name: Invalid value: "Check.example.com": a lowercase RFC 1123 '
            "subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'example.com', regex used "
            "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            id="uppercase-name",
        ),
        pytest.param(
            {"failurePolicy": "other"},
            'webhooks[0].failurePolicy: Unsupported value: "other": supported values: "Fail", '
            '"Ignore"',
            id="failure-policy",
        ),
        pytest.param(
            {"matchPolicy": "Loose"},
            'webhooks[0].matchPolicy: Unsupported value: "Loose": supported values: '
            '"Equivalent", "Exact"',
            id="match-policy",
        ),
        pytest.param(
            {"sideEffects": None},
            "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            id="side-effects-required",
        ),
        pytest.param(
            {"sideEffects": "Unknown"},
            'webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", '
            '"NoneOnDryRun"',
            id="side-effects-unknown",
        ),
        pytest.param(
            {"timeoutSeconds": 0},
            "webhooks[0].timeoutSeconds: Invalid value: 0: the timeout value must be between "
            "1 and 30 seconds",
            id="timeout-zero",
        ),
        pytest.param(
            {"timeoutSeconds": -1},
            "webhooks[0].timeoutSeconds: Invalid value: -1: the timeout value must be between "
            "1 and 30 seconds",
            id="timeout-negative",
        ),
        pytest.param(
            {"admissionReviewVersions": []},
            "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            id="review-versions-required",
        ),
        pytest.param(
            {"admissionReviewVersions": ["v1", "v1"]},
            'webhooks[0].admissionReviewVersions[1]: Invalid value: "v1": duplicate version',
            id="review-versions-duplicate",
        ),
        pytest.param(
            {"admissionReviewVersions": ["invalidVersion"]},
            'webhooks[0].admissionReviewVersions[0]: Invalid value: "invalidVersion": a DNS-1035 '
            "label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
            "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')\n"
            'webhooks[0].admissionReviewVersions: Invalid value: ["invalidVersion"]: '
            "must include at least one of v1, v1beta1",
            id="review-version-not-a-label",
        ),
        pytest.param(
            {"objectSelector": {"matchLabels": {"app": "-bad"}}},
            'webhooks[0].objectSelector.matchLabels: Invalid value: "-bad": a valid label must '
            "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            "'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            id="object-selector-label",
        ),
        pytest.param(
            {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In"}]}},
            "webhooks[0].namespaceSelector.matchExpressions[0].values: Required value: must be "
            "specified when `operator` is 'In' or 'NotIn'",
            id="namespace-selector-expression",
        ),
        pytest.param(
            {"clientConfig": {}},
            "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            id="no-client-config",
        ),
        pytest.param(
            {
                "clientConfig": {
                    "url": "https://a.example.com",
                    "service": {"namespace": "ns", "name": "n", "port": 443},
                }
            },
            "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            id="both-url-and-service",
        ),
    ],
)
def test_webhook_field_rules(overrides: Object, expected: str) -> None:
    value = hook(**overrides)
    for key, override in overrides.items():
        if override is None:
            del value[key]
    assert errors_of(config(value)) == expected.split("\n")


def test_mix_of_known_and_unknown_review_versions_is_valid() -> None:
    assert errors_of(config(hook(admissionReviewVersions=["v1beta1", "something-else"]))) == []
    assert errors_of(config(hook(admissionReviewVersions=["v2"]))) == [
        'webhooks[0].admissionReviewVersions: Invalid value: ["v2"]: must include at '
        "least one of v1, v1beta1"
    ]


def test_names_must_be_unique_and_errors_keep_upstreams_order() -> None:
    first = hook(name="dup.example.com", timeoutSeconds=99, admissionReviewVersions=["v9"])
    second = hook(name="dup.example.com")
    assert errors_of(config(first, second)) == [
        "webhooks[0].timeoutSeconds: Invalid value: 99: the timeout value must be between 1 "
        "and 30 seconds",
        'webhooks[0].admissionReviewVersions: Invalid value: ["v9"]: must include at '
        "least one of v1, v1beta1",
        'webhooks[1].name: Duplicate value: "dup.example.com"',
    ]


def test_reinvocation_policy_is_a_mutating_field() -> None:
    value = config(hook(reinvocationPolicy="Always"))
    assert errors_of(value) == []
    assert errors_of(value, mutating=True) == [
        'webhooks[0].reinvocationPolicy: Unsupported value: "Always": supported values: '
        '"IfNeeded", "Never"'
    ]


@pytest.mark.parametrize(
    ("rule_overrides", "expected"),
    [
        pytest.param(
            {"operations": []},
            ["webhooks[0].rules[0].operations: Required value"],
            id="no-operations",
        ),
        pytest.param(
            {"operations": ["CREATE", ""]},
            [
                'webhooks[0].rules[0].operations[1]: Unsupported value: "": supported values: '
                '"*", "CONNECT", "CREATE", "DELETE", "UPDATE"'
            ],
            id="empty-operation",
        ),
        pytest.param(
            {"operations": ["PATCH"]},
            [
                'webhooks[0].rules[0].operations[0]: Unsupported value: "PATCH": supported '
                'values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"'
            ],
            id="patch-operation",
        ),
        pytest.param(
            {"apiGroups": ["*", "apps"], "apiVersions": ["v1", "*"]},
            [
                'webhooks[0].rules[0].apiGroups: Invalid value: ["*","apps"]: if '
                "'*' is present, must not specify other API groups",
                'webhooks[0].rules[0].apiVersions: Invalid value: ["v1","*"]: if '
                "'*' is present, must not specify other API versions",
            ],
            id="wildcard-groups-and-versions",
        ),
        pytest.param(
            {"apiGroups": [], "apiVersions": ["v1", ""]},
            [
                "webhooks[0].rules[0].apiGroups: Required value",
                "webhooks[0].rules[0].apiVersions[1]: Required value",
            ],
            id="missing-group-empty-version",
        ),
        pytest.param(
            {"resources": []},
            ["webhooks[0].rules[0].resources: Required value"],
            id="no-resources",
        ),
        pytest.param({"resources": ["*", "a/b", "a/*", "*/b"]}, [], id="star-with-subresources"),
        pytest.param({"resources": ["a/*", "a"]}, [], id="subresource-wildcard-and-resource"),
        pytest.param(
            {"resources": ["*", "a"]},
            [
                'webhooks[0].rules[0].resources: Invalid value: ["*","a"]: if \'*\' is '
                "present, must not specify other resources without subresources"
            ],
            id="star-with-plain-resource",
        ),
        pytest.param(
            {"resources": ["a/*", "a/x"]},
            [
                "webhooks[0].rules[0].resources[1]: Invalid value: \"a/x\": if 'a/*' is "
                "present, must not specify a/x"
            ],
            id="resource-wildcard-subresource",
        ),
        pytest.param(
            {"resources": ["*/a", "x/a"]},
            [
                "webhooks[0].rules[0].resources[1]: Invalid value: \"x/a\": if '*/a' is "
                "present, must not specify x/a"
            ],
            id="wildcard-resource-subresource",
        ),
        pytest.param(
            {"resources": ["*/*", "a"]},
            [
                'webhooks[0].rules[0].resources: Invalid value: ["*/*","a"]: if '
                "'*/*' is present, must not specify other resources"
            ],
            id="double-wildcard",
        ),
        pytest.param(
            {"resources": ["pods", ""]},
            ["webhooks[0].rules[0].resources[1]: Required value"],
            id="empty-resource",
        ),
        pytest.param(
            {"scope": "Global"},
            [
                'webhooks[0].rules[0].scope: Unsupported value: "Global": supported values: '
                '"*", "Cluster", "Namespaced"'
            ],
            id="scope",
        ),
    ],
)
def test_rules(rule_overrides: Object, expected: list[str]) -> None:
    assert errors_of(config(hook(rules=[rule(**rule_overrides)]))) == expected


def test_wildcard_operation_with_others_shows_the_list_as_json() -> None:
    errs = errors_of(config(hook(rules=[rule(operations=["CREATE", "*"])])))
    assert errs == [
        'webhooks[0].rules[0].operations: Invalid value: ["CREATE","*"]: if \'*\' is present, '
        "must not specify other operations"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "",
            [
                f"Invalid value: \"\": 'https' is the only allowed URL scheme{URL_FORM}",
                f'Invalid value: "": host must be specified{URL_FORM}',
            ],
            id="blank",
        ),
        pytest.param(
            "http://example.com",
            [f"Invalid value: \"http\": 'https' is the only allowed URL scheme{URL_FORM}"],
            id="http",
        ),
        pytest.param(
            "https:///fancy/webhook",
            [f'Invalid value: "": host must be specified{URL_FORM}'],
            id="no-host",
        ),
        pytest.param(
            "https://example.com/#bookmark",
            ['Invalid value: "bookmark": fragments are not permitted in the URL'],
            id="fragment",
        ),
        pytest.param(
            "https://example.com?arg=value",
            ['Invalid value: "arg=value": query parameters are not permitted in the URL'],
            id="query",
        ),
        pytest.param(
            "https://harry.potter@example.com/",
            ['Invalid value: "harry.potter": user information is not permitted in the URL'],
            id="user",
        ),
        pytest.param(
            "arg#backwards=thisis?html.index/port:host//:https",
            [
                f"Invalid value: \"\": 'https' is the only allowed URL scheme{URL_FORM}",
                f'Invalid value: "": host must be specified{URL_FORM}',
                'Invalid value: "backwards=thisis?html.index/port:host//:https": fragments are '
                "not permitted in the URL",
            ],
            id="totally-wrong",
        ),
        pytest.param(
            "https://example.com:port/x",
            [
                'Required value: url must be a valid URL: parse "https://example.com:port/x": '
                f'invalid port ":port" after host{URL_FORM}'
            ],
            id="unparseable",
        ),
        pytest.param("HTTPS://Example.com:8443/hook", [], id="scheme-is-case-insensitive"),
    ],
)
def test_webhook_url(url: str, expected: list[str]) -> None:
    errs = errors_of(config(hook(clientConfig={"url": url})))
    assert errs == [f"webhooks[0].clientConfig.url: {e}" for e in expected]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param({"path": "/"}, [], id="slash"),
        pytest.param({"path": "/foo"}, [], id="one-segment"),
        pytest.param({"path": ""}, [], id="empty-path"),
        pytest.param(
            {"path": "foo/"},
            ["path: Invalid value: \"foo/\": must start with a '/'"],
            id="relative",
        ),
        pytest.param(
            {"path": "//"},
            ['path: Invalid value: "//": segment[0] may not be empty'],
            id="double-slash",
        ),
        pytest.param(
            {"path": "/foo//bar/"},
            ['path: Invalid value: "/foo//bar/": segment[1] may not be empty'],
            id="empty-middle-segment",
        ),
        pytest.param(
            {"path": "/foo/bar//"},
            ['path: Invalid value: "/foo/bar//": segment[2] may not be empty'],
            id="empty-last-segment",
        ),
        pytest.param(
            {"path": "/apis/foo.bar/v1alpha1/--bad"},
            [
                'path: Invalid value: "/apis/foo.bar/v1alpha1/--bad": segment[3]: a lowercase '
                "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                "'.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
            id="bad-segment",
        ),
        pytest.param(
            {"port": 0},
            ["port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive"],
            id="port-zero",
        ),
        pytest.param(
            {"port": 65536},
            [
                "port: Invalid value: 65536: port is not valid: must be between 1 and 65535, "
                "inclusive"
            ],
            id="port-too-big",
        ),
        pytest.param(
            {"name": "", "namespace": ""},
            ["name: Required value", "namespace: Required value"],
            id="name-and-namespace",
        ),
    ],
)
def test_service_reference(service: Object, expected: list[str]) -> None:
    reference = {"namespace": "ns", "name": "n", "port": 443, **service}
    errs = errors_of(config(hook(clientConfig={"service": reference})))
    assert errs == [f"webhooks[0].clientConfig.service.{e}" for e in expected]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(
            [{"expression": "true"}, {"name": "", "expression": "true"}],
            [
                "webhooks[0].matchConditions[0].name: Required value",
                "webhooks[0].matchConditions[1].name: Required value",
            ],
            id="names-required",
        ),
        pytest.param(
            [{"name": "-hello", "expression": "true"}, {"name": "a.b/c", "expression": "true"}],
            [f'webhooks[0].matchConditions[0].name: Invalid value: "-hello": {NAME_PART}'],
            id="qualified-names",
        ),
        pytest.param(
            [{"name": "a", "expression": "   "}],
            ["webhooks[0].matchConditions[0].expression: Required value"],
            id="expression-required",
        ),
        pytest.param(
            [{"name": "a", "expression": "object.x in [1, 2, "}],
            [
                'webhooks[0].matchConditions[0].expression: Invalid value: "object.x in [1, 2,": '
                "compilation failed: ERROR: <input>:1:19: Syntax error: missing ']' at '<EOF>'\n"
                " | object.x in [1, 2,\n | ..................^"
            ],
            id="syntax-error",
        ),
        pytest.param(
            [{"name": "a", "expression": "6"}],
            [
                'webhooks[0].matchConditions[0].expression: Invalid value: "6": must evaluate to '
                "bool but got int"
            ],
            id="not-bool",
        ),
        pytest.param(
            [{"name": "a", "expression": "object.spec.paused"}],
            [
                'webhooks[0].matchConditions[0].expression: Invalid value: "object.spec.paused": '
                "must evaluate to bool but got dyn"
            ],
            id="dyn-is-not-bool",
        ),
        pytest.param(
            [{"name": "a", "expression": "params.x == 1 && object.y == 2"}],
            [
                'webhooks[0].matchConditions[0].expression: Invalid value: "params.x == 1 && '
                'object.y == 2": compilation failed: ERROR: <input>:1:1: undeclared reference to '
                "'params' (in container '')\n | params.x == 1 && object.y == 2\n | ^"
            ],
            id="no-params-for-webhooks",
        ),
        pytest.param(
            [{"name": "a", "expression": "object.x == 1 &&\n  other.y"}],
            [
                'webhooks[0].matchConditions[0].expression: Invalid value: "object.x == 1 '
                '&&\\n  other.y": compilation failed: ERROR: <input>:2:3: undeclared reference to '
                "'other' (in container '')\n |   other.y\n | ..^"
            ],
            id="undeclared-on-second-line",
        ),
        pytest.param(
            [{"name": "a", "expression": "true"}, {"name": "a", "expression": "false"}],
            ['webhooks[0].matchConditions[1].name: Duplicate value: "a"'],
            id="duplicate-names",
        ),
        pytest.param(
            [
                {
                    "name": "uses-everything",
                    "expression": "request.dryRun || (has(object.metadata) && oldObject == null"
                    " && namespaceObject.metadata.name != '' && object.items.all(i, i != 0)"
                    " && authorizer.group('').resource('pods').check('get').allowed())",
                }
            ],
            [],
            id="declared-variables",
        ),
    ],
)
def test_match_conditions(conditions: list[Object], expected: list[str]) -> None:
    assert errors_of(config(hook(matchConditions=conditions))) == expected


def test_at_most_64_match_conditions() -> None:
    conditions = [{"name": f"c{i}", "expression": "true"} for i in range(65)]
    assert errors_of(config(hook(matchConditions=conditions))) == [
        "webhooks[0].matchConditions: Too many: 65: must have at most 64 items"
    ]


def test_condition_names_may_repeat_across_webhooks() -> None:
    condition = [{"name": "same", "expression": "true"}]
    first = hook(matchConditions=condition)
    second = hook(name="second.example.com", matchConditions=condition)
    assert errors_of(config(first, second)) == []


def test_reserved_static_name_is_refused_on_create_and_warned_on_update() -> None:
    obj = config(hook(), name="policy.static.k8s.io")
    obj["metadata"]["resourceVersion"] = "3"
    detail = (
        'names ending with ".static.k8s.io" are reserved for static manifest-based '
        "configurations and cannot be managed via the API"
    )
    assert errors_of(obj) == [f'metadata.name: Invalid value: "policy.static.k8s.io": {detail}']
    strategy = validatingwebhookconfigurations.RESOURCE.strategy
    assert strategy.warnings_on_create(obj) == []
    assert strategy.warnings_on_update(obj, obj) == [f"metadata.name: {detail}"]
    assert strategy.validate_update(obj, copy.deepcopy(obj)) == []


# ----- update ratchets -------------------------------------------------------------------


def stored(*hooks: Object) -> Object:
    obj = config(*hooks)
    obj["metadata"]["resourceVersion"] = "5"
    return obj


def update_errors(new: Object, old: Object, *, mutating: bool = False) -> list[str]:
    return [
        str(e) for e in webhooks.validate_webhook_configuration_update(new, old, mutating=mutating)
    ]


def test_update_keeps_side_effects_an_older_server_allowed() -> None:
    old = stored(hook(sideEffects="Unknown"))
    new = copy.deepcopy(old)
    new["webhooks"][0]["timeoutSeconds"] = 5
    assert update_errors(new, old) == []
    # Once every webhook is side-effect free, the strict rule is back.
    clean = stored(hook())
    regressed = copy.deepcopy(clean)
    regressed["webhooks"][0]["sideEffects"] = "Some"
    assert update_errors(regressed, clean) == [
        'webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", '
        '"NoneOnDryRun"'
    ]


def test_update_ratchets_review_versions_names_and_label_values() -> None:
    bad_selector = {"matchExpressions": [{"key": "k", "operator": "In", "values": ["-x"]}]}
    old = stored(
        hook(admissionReviewVersions=["v9"], objectSelector=bad_selector),
        hook(name="second.example.com"),
    )
    new = copy.deepcopy(old)
    new["webhooks"][1]["name"] = "check.example.com"  # now both share a name
    # The stored review versions and label value stay acceptable; the new duplicate does not.
    assert update_errors(new, copy.deepcopy(old)) == [
        'webhooks[1].name: Duplicate value: "check.example.com"'
    ]
    old["webhooks"][1]["name"] = "check.example.com"
    assert update_errors(new, old) == []
    # A create is held to every rule.
    assert len(errors_of(new)) == 3


def test_unchanged_match_conditions_are_not_recompiled() -> None:
    # An expression a newer CEL environment refuses stays valid while it is untouched.
    kept = [{"name": "legacy", "expression": "6"}]
    old = stored(hook(matchConditions=kept))
    new = copy.deepcopy(old)
    new["webhooks"][0]["failurePolicy"] = "Ignore"
    assert update_errors(new, old) == []
    new["webhooks"][0]["matchConditions"] = [*kept, {"name": "added", "expression": "true"}]
    assert update_errors(new, old) == [
        'webhooks[0].matchConditions[0].expression: Invalid value: "6": must evaluate to bool '
        "but got int"
    ]


def test_update_checks_metadata_rules() -> None:
    old = stored(hook())
    old["metadata"]["uid"] = "a"
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "b"
    assert update_errors(new, old) == ['metadata.uid: Invalid value: "b": field is immutable']


# ----- defaults, generation, table -------------------------------------------------------


def test_defaults_fill_only_what_is_missing() -> None:
    obj = config(
        hook(
            clientConfig={"service": {"namespace": "ns", "name": "n"}},
            rules=[rule(), rule(scope="Namespaced")],
            failurePolicy="Ignore",
            objectSelector={"matchLabels": {"a": "b"}},
            timeoutSeconds=3,
        )
    )
    mutating = copy.deepcopy(obj)
    webhooks.set_defaults_validating_webhook_configuration(obj)
    webhooks.set_defaults_mutating_webhook_configuration(mutating)
    value = obj["webhooks"][0]
    assert value["failurePolicy"] == "Ignore"
    assert value["matchPolicy"] == "Equivalent"
    assert (value["namespaceSelector"], value["objectSelector"]) == (
        {},
        {"matchLabels": {"a": "b"}},
    )
    assert value["timeoutSeconds"] == 3
    assert [r["scope"] for r in value["rules"]] == ["*", "Namespaced"]
    assert value["clientConfig"]["service"]["port"] == 443
    assert "reinvocationPolicy" not in value
    assert mutating["webhooks"][0]["reinvocationPolicy"] == "Never"
    # Nothing is invented for fields v1 requires.
    bare: Object = {"webhooks": [{"name": "x.y.z", "clientConfig": {"url": "https://a"}}]}
    webhooks.set_defaults_validating_webhook_configuration(bare)
    assert "sideEffects" not in bare["webhooks"][0]
    assert "admissionReviewVersions" not in bare["webhooks"][0]


def test_generation_follows_webhooks_only() -> None:
    strategy = mutatingwebhookconfigurations.RESOURCE.strategy
    old = stored(hook())
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"] = {"a": "b"}
    assert not strategy.bumps_generation(relabelled, old)
    changed = copy.deepcopy(old)
    changed["webhooks"][0]["timeoutSeconds"] = 7
    assert strategy.bumps_generation(changed, old)
    assert not strategy.allow_unconditional_update()
    assert mutatingwebhookconfigurations.RESOURCE.tracks_generation


def test_resources_are_declared_as_upstream() -> None:
    for module, kind in (
        (validatingwebhookconfigurations, "ValidatingWebhookConfiguration"),
        (mutatingwebhookconfigurations, "MutatingWebhookConfiguration"),
    ):
        info = module.RESOURCE
        assert (info.group, info.version, info.kind) == ("admissionregistration.k8s.io", "v1", kind)
        assert (info.namespaced, info.short_names, info.categories) == (
            False,
            (),
            ("api-extensions",),
        )
        assert info.plural == kind.lower() + "s" and info.status is None


def test_table_row_counts_webhooks() -> None:
    now = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
    obj = config(hook(), hook(name="b.example.com"))
    obj["metadata"]["creationTimestamp"] = "2025-01-01T11:00:00Z"
    columns = webhookconfigurations.COLUMNS
    assert [(c.name, c.type) for c in columns] == [
        ("Name", "string"),
        ("Webhooks", "integer"),
        ("Age", "string"),
    ]
    assert list(webhookconfigurations.webhook_configuration_row(obj, now)) == ["config", 2, "60m"]
    assert webhookconfigurations.webhook_configuration_row(config(), now)[1] == 0
