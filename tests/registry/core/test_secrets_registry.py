"""Secret and ConfigMap registry wiring: write-path steps, field selector, tables."""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.registry.core import configmaps, secrets

Object = dict[str, Any]

NOW = datetime.datetime(2024, 1, 1, 0, 10, tzinfo=datetime.UTC)


def test_defaults_fold_string_data_and_default_the_type() -> None:
    """set_defaults (run right after decoding) leaves only base64 data and type Opaque."""
    obj: Object = {"metadata": {"name": "s"}, "stringData": {"user": "admin"}}
    secrets.STRATEGY.set_defaults(obj)
    assert obj == {"metadata": {"name": "s"}, "type": "Opaque", "data": {"user": "YWRtaW4="}}


def test_string_data_change_on_immutable_secret_is_refused() -> None:
    """Because stringData is folded before validation, it cannot bypass immutability."""
    old: Object = {
        "metadata": {"name": "s", "namespace": "d", "resourceVersion": "1"},
        "type": "Opaque",
        "immutable": True,
        "data": {"k": "djE="},
    }
    new: Object = {**old, "data": dict(old["data"]), "stringData": {"k": "v2"}}
    secrets.STRATEGY.set_defaults(new)
    secrets.STRATEGY.prepare_for_update(new, old)
    assert [str(e) for e in secrets.STRATEGY.validate_update(new, old)] == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]


def test_update_without_type_keeps_the_stored_type() -> None:
    """Upstream's PrepareForUpdate copies the old type into an update that has none."""
    old: Object = {"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}
    new: Object = {"metadata": {"name": "s"}}
    secrets.STRATEGY.prepare_for_update(new, old)
    assert new["type"] == "kubernetes.io/tls"


def test_canonicalize_re_encodes_data() -> None:
    """Stored data is in Go's canonical base64 form."""
    obj: Object = {"data": {"a": "aGk=\n"}}
    secrets.STRATEGY.canonicalize(obj)
    assert obj["data"] == {"a": "aGk="}


def test_secret_resource_declaration() -> None:
    """Namespaced, no short names, field selector on type, upstream's columns."""
    info = secrets.RESOURCE
    assert (info.namespaced, info.short_names, info.categories) == (True, (), ())
    assert info.all_selectable_fields["type"]({"type": "kubernetes.io/tls"}) == "kubernetes.io/tls"
    assert [c["name"] for c in info.table.column_definitions] == ["Name", "Type", "Data", "Age"]


def test_secret_row_counts_keys() -> None:
    """NAME TYPE DATA AGE as kubectl prints them."""
    obj: Object = {
        "metadata": {"name": "tls", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""},
    }
    assert list(secrets.secret_row(obj, NOW)) == ["tls", "kubernetes.io/tls", 2, "10m"]


def test_config_map_row_counts_both_maps() -> None:
    """DATA counts data and binaryData keys together."""
    obj: Object = {
        "metadata": {"name": "cfg", "creationTimestamp": "2024-01-01T00:09:30Z"},
        "data": {"a": "1"},
        "binaryData": {"b": "eA=="},
    }
    assert list(configmaps.config_map_row(obj, NOW)) == ["cfg", 2, "30s"]
    assert configmaps.RESOURCE.short_names == ("cm",)
    assert [c["name"] for c in configmaps.RESOURCE.table.column_definitions] == [
        "Name",
        "Data",
        "Age",
    ]
