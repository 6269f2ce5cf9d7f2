"""The field manager a write without ``fieldManager`` is recorded under: its User-Agent's product."""

from __future__ import annotations

import pytest

from kajitori.machinery import field, objectmeta
from kajitori.server.handlers.resources import manager_from_user_agent


@pytest.mark.parametrize(
    ("user_agent", "manager"),
    [
        ("kubectl/v1.37.1 (linux/amd64) kubernetes/abc", "kubectl"),
        ("kubectl-create/v1.37.1", "kubectl-create"),
        ("OpenAPI-Generator/31.0.0/python", "OpenAPI-Generator"),
        ("no-slash", "no-slash"),
        ("", ""),
        # Unprintable characters are dropped, as upstream's prefixFromUserAgent does.
        ("bad\x00\x7fname/1.0", "badname"),
        ("tab\there/1", "tabhere"),
    ],
)
def test_the_manager_is_the_printable_product(user_agent: str, manager: str) -> None:
    assert manager_from_user_agent(user_agent) == manager


def test_a_long_product_stops_before_128_bytes_and_is_a_valid_manager() -> None:
    ascii_name = manager_from_user_agent("a" * 200 + "/1.0")
    assert ascii_name == "a" * 128
    # Three-byte characters: 42 fit (126 bytes); the 43rd would pass 128.
    wide = manager_from_user_agent("語" * 50)
    assert wide == "語" * 42
    for name in (ascii_name, wide):
        assert objectmeta.validate_field_manager(name, field.Path("fieldManager")) == []
