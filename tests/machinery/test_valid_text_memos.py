"""Validation checks that skip texts which passed before still report every problem.

``names.is_config_map_key``, ``core_v1.validation.problems`` (an Event's
namespace and reporting controller) and ``validate_object_meta``'s glance at
labels and managedFields remember only passes, per check, bounded: a text that
failed is checked (and reported) again, and a remembered pass never answers
for another text or another check.
"""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.core_v1 import validation as core_validation
from kajitori.machinery import field, names, objectmeta


def test_config_map_keys_that_passed_are_remembered_and_failures_reported_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = names.PassMemo(names._config_map_key_problems, 2)
    monkeypatch.setattr(names, "_CONFIG_MAP_KEYS", memo)
    assert names.is_config_map_key("app.conf") == []
    assert memo.passed == {"app.conf"}
    first = names.is_config_map_key("..bad")
    assert first and names.is_config_map_key("..bad") == first
    assert names.is_config_map_key("a b") != []  # another text, not the remembered one
    names.is_config_map_key("k1")
    names.is_config_map_key("k2")  # over the bound: the memo started over
    assert len(memo.passed) <= 2
    assert names.is_config_map_key("app.conf") == []


def test_problems_remembers_passes_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    memos: dict[Any, names.PassMemo] = {}
    monkeypatch.setattr(core_validation, "_MEMOS", memos)
    assert core_validation.problems(names.is_dns1123_subdomain, "kube-system") == []
    assert core_validation.problems(names.is_dns1123_subdomain, "Bad_NS")
    assert core_validation.problems(names.is_dns1123_subdomain, "Bad_NS")  # not remembered
    # A pass of one check says nothing for another: "a.b" is a subdomain, not a label.
    assert core_validation.problems(names.is_dns1123_subdomain, "a.b") == []
    assert core_validation.problems(names.is_dns1123_label, "a.b")
    assert memos[names.is_dns1123_subdomain].passed == {"kube-system", "a.b"}


def _validate(meta: dict[str, Any]) -> list[str]:
    errs = objectmeta.validate_object_meta(
        meta,
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    return [str(e) for e in errs]


_ENTRY = {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {}}


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        pytest.param(
            {"labels": {"app": "web", "bad key!": "web"}},
            'metadata.labels: Invalid value: "bad key!"',
            id="label-key",
        ),
        pytest.param(
            {"labels": {"app": "-web-"}},
            'metadata.labels: Invalid value: "-web-"',
            id="label-value",
        ),
        pytest.param({"labels": {"app": 1}}, "", id="non-string-label-value-reads-as-empty"),
        pytest.param(
            {"managedFields": [_ENTRY, {**_ENTRY, "operation": "Patch"}]},
            'metadata.managedFields[1].operation: Unsupported value: "Patch"',
            id="second-entry",
        ),
        pytest.param(
            {"managedFields": [{**_ENTRY, "manager": "m" * 200}]},
            "metadata.managedFields[0].manager: Too long",
            id="long-manager",
        ),
    ],
)
def test_labels_and_entries_that_do_not_pass_at_a_glance_get_the_full_check(
    bad: dict[str, Any], expected: str
) -> None:
    valid = {
        "name": "n",
        "namespace": "default",
        "labels": {"app": "web"},
        "managedFields": [_ENTRY],
    }
    assert _validate(valid) == []  # remembered: the glance passes them
    assert objectmeta._passes_at_a_glance("labels", valid["labels"])
    assert objectmeta._passes_at_a_glance("managedFields", valid["managedFields"])
    found = _validate({"name": "n", "namespace": "default", **bad})
    if expected:
        assert len(found) == 1 and found[0].startswith(expected)
    else:
        assert found == []
