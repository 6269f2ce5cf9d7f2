"""ObjectMeta validation on create and update, against upstream's cases and wording."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.machinery import field, names, objectmeta

META = field.Path("metadata")
TOTAL = objectmeta.TOTAL_ANNOTATION_SIZE_LIMIT_B


def create(meta: dict[str, Any], *, namespaced: bool = True, **kwargs: Any) -> list[str]:
    errs = objectmeta.validate_object_meta(
        meta,
        namespaced=namespaced,
        name_validator=kwargs.pop("name_validator", names.name_is_dns_subdomain),
        path=META,
        **kwargs,
    )
    return [str(e) for e in errs]


def update(new: dict[str, Any], old: dict[str, Any], **kwargs: Any) -> list[str]:
    return [str(e) for e in objectmeta.validate_object_meta_update(new, old, path=META, **kwargs)]


def test_valid_namespaced_metadata_has_no_errors() -> None:
    """A complete, well-formed ObjectMeta passes."""
    meta = {
        "name": "web-1",
        "namespace": "default",
        "labels": {"app": "web", "example.com/tier": ""},
        "annotations": {"Example.COM/Note": "x"},
        "finalizers": ["kubernetes", "example.com/cleanup"],
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "rs",
                "uid": "u1",
                "controller": True,
            }
        ],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1"}],
    }
    assert create(meta) == []


@pytest.mark.parametrize(
    ("meta", "namespaced", "expected"),
    [
        pytest.param(
            {"namespace": "ns"},
            True,
            ["metadata.name: Required value: name or generateName is required"],
            id="name-required",
        ),
        pytest.param(
            {"name": "Bad_Name", "namespace": "ns"},
            True,
            [
                'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist '
                "of lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
            id="bad-name",
        ),
        pytest.param(
            {"name": "x"}, True, ["metadata.namespace: Required value"], id="namespace-required"
        ),
        pytest.param(
            {"name": "x", "namespace": "ns"},
            False,
            ["metadata.namespace: Forbidden: not allowed on this type"],
            id="namespace-forbidden",
        ),
        pytest.param(
            {"name": "x", "namespace": "foo.bar"},
            True,
            ['metadata.namespace: Invalid value: "foo.bar": must not contain dots'],
            id="namespace-label",
        ),
        pytest.param(
            {"name": "x", "generation": -1},
            False,
            ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
            id="negative-generation",
        ),
    ],
)
def test_create_reports_name_namespace_and_generation_errors(
    meta: dict[str, Any], namespaced: bool, expected: list[str]
) -> None:
    """Create-time name/namespace/generation rules render as upstream."""
    assert create(meta, namespaced=namespaced) == expected


def test_generate_name_may_end_with_a_dash() -> None:
    """generateName "foo-" is valid (prefix masking), as upstream's TrimsTrailingDash."""
    assert create({"name": "test", "generateName": "foo-"}, namespaced=False) == []


def test_custom_name_validator_sees_name_and_generate_name() -> None:
    """The name function runs on generateName (prefix) and name, each error on its field."""

    def only_test(name: str, prefix: bool) -> list[str]:
        return [] if name == "test" else ["wrong value"]

    got = create(
        {"name": "invalid", "generateName": "invalid"}, namespaced=False, name_validator=only_test
    )
    assert got == [
        'metadata.generateName: Invalid value: "invalid": wrong value',
        'metadata.name: Invalid value: "invalid": wrong value',
    ]


@pytest.mark.parametrize(
    ("labels", "expected_fragment"),
    [
        pytest.param(
            {"a b": "v"}, 'metadata.labels: Invalid value: "a b": name part must', id="key"
        ),
        pytest.param(
            {"k": "-v"}, 'metadata.labels: Invalid value: "-v": a valid label', id="value"
        ),
        pytest.param(
            {"k": "v" * 64},
            'metadata.labels: Invalid value: "' + "v" * 64 + '": must be no more than 63 bytes',
            id="value-length",
        ),
    ],
)
def test_label_errors_name_the_labels_map(labels: dict[str, str], expected_fragment: str) -> None:
    """Label errors sit on metadata.labels itself, with the offending key or value."""
    got = create({"name": "x", "labels": labels}, namespaced=False)
    assert len(got) == 1
    assert got[0].startswith(expected_fragment)


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({"simple": "bar"}, id="simple"),
        pytest.param({"1.2.3.4/5678": "bar"}, id="ip-prefix"),
        pytest.param({"UpperCase123": "bar"}, id="upper"),
        pytest.param({"Example.COM/Key": "bar"}, id="upper-prefix"),
        pytest.param({"a": "b" * (TOTAL - 1)}, id="just-under-budget"),
        pytest.param({"a": "b" * (TOTAL // 2 - 1), "c": "d" * (TOTAL // 2 - 1)}, id="two-halves"),
    ],
)
def test_annotations_accept_upstream_good_cases(annotations: dict[str, str]) -> None:
    """Upstream's good annotation maps pass."""
    assert objectmeta.validate_annotations(annotations, META.child("annotations")) == []


@pytest.mark.parametrize(
    ("annotations", "fragment"),
    [
        pytest.param({"nospecialchars^=@": "bar"}, "name part must consist of", id="chars"),
        pytest.param({"cantendwithadash-": "bar"}, "name part must consist of", id="dash"),
        pytest.param({"only/one/slash": "bar"}, "a valid label key must consist of", id="slashes"),
        pytest.param({"a" * 254: "bar"}, "must be no more than", id="long"),
    ],
)
def test_annotation_keys_follow_qualified_name_rules(
    annotations: dict[str, str], fragment: str
) -> None:
    """Upstream's bad annotation keys give exactly one error with its detail."""
    errs = objectmeta.validate_annotations(annotations, META.child("annotations"))
    assert len(errs) == 1
    assert fragment in errs[0].detail


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({"a": "b" * TOTAL}, id="one"),
        pytest.param({"a": "b" * (TOTAL // 2), "c": "d" * (TOTAL // 2)}, id="two"),
    ],
)
def test_annotations_over_256_kib_are_too_long(annotations: dict[str, str]) -> None:
    """The key+value budget of 262144 bytes renders as upstream's TooLong."""
    errs = objectmeta.validate_annotations(annotations, META.child("annotations"))
    assert [str(e) for e in errs] == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]


def ref(**overrides: Any) -> dict[str, Any]:
    base = {"apiVersion": "customresourceVersion", "kind": "customresourceKind", "name": "name"}
    base["uid"] = "1"
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        pytest.param([ref()], [], id="valid"),
        pytest.param(
            [ref(apiVersion="a/b/c")],
            [
                'metadata.ownerReferences[0].apiVersion: Invalid value: "a/b/c": '
                "must be <group>/<version> or <version>"
            ],
            id="too-many-slashes",
        ),
        pytest.param(
            [ref(apiVersion="customresourceVersion/")],
            [
                'metadata.ownerReferences[0].apiVersion: Invalid value: "customresourceVersion/": '
                "must be <group>/<version> or <version>"
            ],
            id="empty-version",
        ),
        pytest.param(
            [ref(apiVersion=None, kind=None, name=None, uid=None)],
            [
                "metadata.ownerReferences[0].apiVersion: Required value: must not be empty",
                "metadata.ownerReferences[0].kind: Required value: must not be empty",
                "metadata.ownerReferences[0].name: Required value: must not be empty",
                "metadata.ownerReferences[0].uid: Required value: must not be empty",
            ],
            id="all-required",
        ),
    ],
)
def test_owner_references_follow_upstream_cases(
    refs: list[dict[str, Any]], expected: list[str]
) -> None:
    """Owner references: required fields, group/version syntax, banned owners, one controller."""
    got = [
        str(e) for e in objectmeta.validate_owner_references(refs, META.child("ownerReferences"))
    ]
    assert got == expected


def test_events_may_not_own_objects() -> None:
    """A v1 Event owner is refused with upstream's GVK wording and the reference as JSON."""
    errs = objectmeta.validate_owner_references(
        [ref(apiVersion="v1", kind="Event", name="ev", uid="u")], META.child("ownerReferences")
    )
    assert [str(e) for e in errs] == [
        'metadata.ownerReferences[0]: Invalid value: {"apiVersion":"v1","kind":"Event","name":"ev",'
        '"uid":"u"}: /v1, Kind=Event is disallowed from being an owner'
    ]


def test_only_one_owner_reference_may_be_the_controller() -> None:
    """A second controller reference names both kinds/names as upstream does."""
    refs = [
        ref(kind="customresourceKind1", controller=False),
        ref(kind="customresourceKind2", controller=True),
        ref(kind="customresourceKind3", controller=True),
    ]
    errs = objectmeta.validate_owner_references(refs, META.child("ownerReferences"))
    assert len(errs) == 1
    assert errs[0].field == "metadata.ownerReferences"
    assert errs[0].detail == (
        'Only one reference can have Controller set to true. Found "true" in references for '
        "customresourceKind2/name and customresourceKind3/name"
    )


@pytest.mark.parametrize(
    ("finalizers", "kube", "expected"),
    [
        pytest.param(["kubernetes", "orphan", "example.com/x"], True, [], id="standard"),
        pytest.param(
            ["my-finalizer"],
            True,
            [
                'metadata.finalizers[0]: Invalid value: "my-finalizer": name is neither a standard '
                "finalizer name nor is it fully qualified"
            ],
            id="unqualified-builtin",
        ),
        pytest.param(["my-finalizer"], False, [], id="unqualified-custom-resource"),
        pytest.param(
            ["orphan", "foregroundDeletion"],
            True,
            [
                'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: finalizer '
                "orphan and foregroundDeletion cannot be both set"
            ],
            id="conflicting",
        ),
        pytest.param(
            ["a/b/c"],
            True,
            ['metadata.finalizers: Invalid value: "a/b/c": a valid label key must consist of'],
            id="syntax-on-list-path",
        ),
    ],
)
def test_finalizer_rules_for_builtin_and_custom_kinds(
    finalizers: list[str], kube: bool, expected: list[str]
) -> None:
    """Finalizer syntax, the standard-name rule for built-ins, and the orphan/foreground clash."""
    got = create({"name": "x", "finalizers": finalizers}, namespaced=False, kube_finalizers=kube)
    assert len(got) == len(expected)
    for line, prefix in zip(got, expected, strict=True):
        assert line.startswith(prefix)


def test_custom_resource_finalizers_get_warnings_instead() -> None:
    """apiextensions' warnings: dotted names are asked for a path, bare names for a domain."""
    got = objectmeta.finalizer_warnings(
        ["finalizers.fluxcd.io", "cleanup", "kubernetes", "example.com/ok"],
        META.child("finalizers"),
    )
    assert got == [
        'metadata.finalizers[0]: "finalizers.fluxcd.io": prefer a domain-qualified finalizer name '
        "including a path (/) to avoid accidental conflicts with other finalizer writers",
        'metadata.finalizers[1]: "cleanup": prefer a domain-qualified finalizer name to avoid '
        "accidental conflicts with other finalizer writers",
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param({"manager": "m", "operation": "Update"}, [], id="valid"),
        pytest.param(
            {"manager": "m"},
            ["metadata.managedFields[0].operation: Required value: must not be empty"],
            id="no-operation",
        ),
        pytest.param(
            {"manager": "m", "operation": "Patch"},
            [
                'metadata.managedFields[0].operation: Unsupported value: "Patch": supported values: '
                '"Apply", "Update"'
            ],
            id="bad-operation",
        ),
        pytest.param(
            {"manager": "m", "operation": "Apply", "fieldsType": "FieldsV2"},
            ['metadata.managedFields[0].fieldsType: Invalid value: "FieldsV2": must be `FieldsV1`'],
            id="fields-type",
        ),
        pytest.param(
            {"manager": "m" * 129, "operation": "Apply"},
            ["metadata.managedFields[0].manager: Too long: may not be more than 128 bytes"],
            id="manager-long",
        ),
        pytest.param(
            {"manager": "a\x07", "operation": "Apply"},
            [
                'metadata.managedFields[0].manager: Invalid value: "a\\u0007": invalid character '
                "U+0007 (at position 1)"
            ],
            id="manager-unprintable",
        ),
        pytest.param(
            {"manager": "m", "operation": "Apply", "subresource": "s" * 257},
            ["metadata.managedFields[0].subresource: Too long: may not be more than 256 bytes"],
            id="subresource-long",
        ),
    ],
)
def test_managed_fields_shape(entry: dict[str, Any], expected: list[str]) -> None:
    """managedFields entries are checked for operation, fieldsType, manager and subresource."""
    got = objectmeta.validate_managed_fields([entry], META.child("managedFields"))
    assert [str(e) for e in got] == expected


OLD = {"name": "test", "namespace": "ns", "uid": "u1", "resourceVersion": "1"}
NOW = "1970-01-01T00:16:40Z"
LATER = "1970-01-01T00:33:20Z"


@pytest.mark.parametrize(
    ("old_extra", "new_extra", "expected"),
    [
        pytest.param({}, {}, [], id="unchanged"),
        pytest.param(
            {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 30},
            {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 30},
            [],
            id="deletion-fields-kept",
        ),
        pytest.param(
            {},
            {"deletionTimestamp": NOW},
            [f'metadata.deletionTimestamp: Invalid value: "{NOW}": field is immutable'],
            id="set-deletion-timestamp",
        ),
        pytest.param(
            {"deletionTimestamp": NOW},
            {"deletionTimestamp": None},
            ["metadata.deletionTimestamp: Invalid value: null: field is immutable"],
            id="clear-deletion-timestamp",
        ),
        pytest.param(
            {"deletionTimestamp": NOW},
            {"deletionTimestamp": LATER},
            [f'metadata.deletionTimestamp: Invalid value: "{LATER}": field is immutable'],
            id="change-deletion-timestamp",
        ),
        pytest.param(
            {"deletionTimestamp": NOW},
            {"deletionTimestamp": "1970-01-01T00:16:40+00:00"},
            [],
            id="same-instant-other-spelling",
        ),
        pytest.param(
            {},
            {"deletionGracePeriodSeconds": 30},
            ["metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable"],
            id="set-grace",
        ),
        pytest.param(
            {"deletionGracePeriodSeconds": 30},
            {"deletionGracePeriodSeconds": 40},
            ["metadata.deletionGracePeriodSeconds: Invalid value: 40: field is immutable"],
            id="change-grace",
        ),
        pytest.param(
            {"generation": 5},
            {"generation": 4},
            ["metadata.generation: Invalid value: 4: must not be decremented"],
            id="generation-decremented",
        ),
        pytest.param({"generation": 1}, {"generation": 2}, [], id="generation-incremented"),
        pytest.param(
            {},
            {"name": "other"},
            ['metadata.name: Invalid value: "other": field is immutable'],
            id="name",
        ),
        pytest.param(
            {},
            {"namespace": "other"},
            ['metadata.namespace: Invalid value: "other": field is immutable'],
            id="namespace",
        ),
        pytest.param(
            {}, {"uid": "u2"}, ['metadata.uid: Invalid value: "u2": field is immutable'], id="uid"
        ),
        pytest.param(
            {"creationTimestamp": NOW},
            {"creationTimestamp": LATER},
            [f'metadata.creationTimestamp: Invalid value: "{LATER}": field is immutable'],
            id="creation-timestamp",
        ),
        pytest.param(
            {},
            {"resourceVersion": ""},
            ['metadata.resourceVersion: Invalid value: "": must be specified for an update'],
            id="resource-version-required",
        ),
        pytest.param({}, {"generateName": "changed-"}, [], id="generate-name-may-change"),
    ],
)
def test_update_keeps_identity_and_deletion_fields_immutable(
    old_extra: dict[str, Any], new_extra: dict[str, Any], expected: list[str]
) -> None:
    """Upstream's update cases: immutables, generation, resourceVersion."""
    assert update({**OLD, **new_extra}, {**OLD, **old_extra}) == expected


@pytest.mark.parametrize(
    ("old_finalizers", "new_finalizers", "deleting", "expected"),
    [
        pytest.param(
            ["x/a"],
            ["x/a", "y/b"],
            True,
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is "
                'being deleted, found new finalizers []string{"y/b"}'
            ],
            id="add-while-deleting",
        ),
        pytest.param(
            ["x/a"],
            ["x/b", "z/c"],
            True,
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is "
                'being deleted, found new finalizers []string{"x/b", "z/c"}'
            ],
            id="change-while-deleting",
        ),
        pytest.param(["x/a", "y/b"], ["x/a"], True, [], id="remove-while-deleting"),
        pytest.param(["x/a"], ["x/a", "y/b"], False, [], id="add-while-live"),
    ],
)
def test_no_finalizers_may_be_added_to_an_object_being_deleted(
    old_finalizers: list[str], new_finalizers: list[str], deleting: bool, expected: list[str]
) -> None:
    """Upstream's finalizer update cases."""
    extra = {"deletionTimestamp": NOW} if deleting else {}
    got = update(
        {**OLD, **extra, "finalizers": new_finalizers},
        {**OLD, **extra, "finalizers": old_finalizers},
    )
    assert got == expected


def test_update_checks_labels_annotations_and_kube_finalizers_of_the_new_object() -> None:
    """Update re-validates labels, annotations and built-in finalizer names."""
    new = {**OLD, "labels": {"k": "-"}, "annotations": {"a/b/c": ""}, "finalizers": ["bare"]}
    got = update(new, OLD)
    assert [line.split(":")[0] for line in got] == [
        "metadata.labels",
        "metadata.annotations",
        "metadata.finalizers[0]",
    ]


def test_creation_timestamp_may_not_be_cleared_or_set_by_validation_alone() -> None:
    """Without the registry restoring it, a missing creationTimestamp differs from a set one."""
    assert len(update(OLD, {**OLD, "creationTimestamp": NOW})) == 1
    assert len(update({**OLD, "creationTimestamp": NOW}, OLD)) == 1
