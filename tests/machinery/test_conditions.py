"""metav1.Condition rules (machinery.conditions), as apimachinery's ValidateConditions.

The one implementation every kind with ``[]metav1.Condition`` status uses
(PodCertificateRequest, StorageVersionMigration, ResourceClaim, DeviceTaintRule).
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import conditions, field

PATH = field.Path("status").child("conditions")


def condition(**overrides: Any) -> dict[str, Any]:
    base = {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "reason": "AllGood",
        "message": "fine",
    }
    return {**base, **overrides}


def test_a_valid_list_has_no_errors() -> None:
    assert not conditions.validate_conditions([condition(), condition(type="Other")], PATH)


def test_each_rule_names_its_field() -> None:
    errs = conditions.validate_conditions(
        [
            condition(),
            condition(
                type="Second",
                status="Maybe",
                observedGeneration=-1,
                reason="1bad",
                lastTransitionTime="",
            ),
            condition(type="Ready", reason=""),
        ],
        PATH,
    )
    assert [(e.field, e.type.reason) for e in errs] == [
        ("status.conditions[1].status", "FieldValueNotSupported"),
        ("status.conditions[1].observedGeneration", "FieldValueInvalid"),
        ("status.conditions[1].lastTransitionTime", "FieldValueRequired"),
        ("status.conditions[1].reason", "FieldValueInvalid"),
        ("status.conditions[2].type", "FieldValueDuplicate"),
        ("status.conditions[2].reason", "FieldValueRequired"),
    ]


def test_is_true_reads_status_conditions() -> None:
    obj = {"status": {"conditions": [condition(type="Succeeded"), condition(status="False")]}}
    assert conditions.is_true(obj, "Succeeded")
    assert not conditions.is_true(obj, "Ready")
    assert not conditions.is_true({}, "Succeeded")
