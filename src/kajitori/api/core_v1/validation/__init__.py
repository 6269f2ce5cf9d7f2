"""Validation of core/v1 objects, one module per resource, plus the helpers they share.

Mirrors pkg/apis/core/validation upstream, split by resource instead of one
file. This package module holds only small field-level helpers (ports, DNS
names, non-negative numbers, quantities) used by several resource modules;
it imports none of them, so ``validation.pods`` and ``validation.services``
can both import it without cycles. Apps/batch reuse the pod template checks
from ``validation.pods``.
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Callable
from typing import Any

from kajitori.machinery import field, names

Object = dict[str, Any]

SUPPORTED_PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
IS_NEGATIVE_ERROR = "must be greater than or equal to 0"
MAX_INT32 = 2**31 - 1


def from_details(path: field.Path, value: Any, details: list[str]) -> field.ErrorList:
    """One ``Invalid`` per detail string of a ``names.is_*`` check."""
    return field.ErrorList(field.invalid(path, value, detail) for detail in details)


# One memo of passed texts per ``names`` check asked through ``problems``.
_MEMOS: dict[Callable[[str], list[str]], names.PassMemo] = {}
_MEMO_LIMIT = 4096


def problems(check: Callable[[str], list[str]], value: str) -> list[str]:
    """``check(value)``, remembering passes (``names.PassMemo``).

    For texts written over and over: an Event's namespace and reporting controller.
    """
    memo = _MEMOS.get(check)
    if memo is None:
        memo = _MEMOS[check] = names.PassMemo(check, _MEMO_LIMIT)
    return memo(value)


def dns1123_label(value: str, path: field.Path) -> field.ErrorList:
    return from_details(path, value, names.is_dns1123_label(value))


def dns1123_subdomain(value: str, path: field.Path) -> field.ErrorList:
    return from_details(path, value, names.is_dns1123_subdomain(value))


def qualified_name(value: str, path: field.Path) -> field.ErrorList:
    return from_details(path, value, names.is_qualified_name(value))


def label_value(value: str, path: field.Path) -> field.ErrorList:
    return from_details(path, value, names.is_valid_label_value(value))


def port_num(value: Any, path: field.Path) -> field.ErrorList:
    if not isinstance(value, int) or isinstance(value, bool):
        return field.ErrorList([field.invalid(path, value, names.inclusive_range_error(1, 65535))])
    return from_details(path, value, names.is_valid_port_num(value))


def port_num_or_name(value: Any, path: field.Path) -> field.ErrorList:
    """Upstream's ValidatePortNumOrName for an IntOrString port."""
    if isinstance(value, str):
        return from_details(path, value, names.is_valid_port_name(value))
    return port_num(value, path)


def protocol(value: Any, path: field.Path) -> field.ErrorList:
    if not value:
        return field.ErrorList([field.required(path)])
    if value not in SUPPORTED_PORT_PROTOCOLS:
        return field.ErrorList([field.not_supported(path, value, SUPPORTED_PORT_PROTOCOLS)])
    return field.ErrorList()


def nonnegative(value: Any, path: field.Path) -> field.ErrorList:
    """ValidateNonnegativeField."""
    if isinstance(value, int | float) and value < 0:
        return field.ErrorList([field.invalid(path, value, IS_NEGATIVE_ERROR)])
    return field.ErrorList()


def ip_address(value: Any, path: field.Path) -> field.ErrorList:
    text = str(value)
    if text in _VALID_IPS:
        return field.ErrorList()
    details = names.is_valid_ip(text)
    if not details:
        if len(_VALID_IPS) >= _VALID_IPS_MAX:
            _VALID_IPS.clear()
        _VALID_IPS.add(text)
    return from_details(path, value, details)


# Address texts that passed (bounded): a pod's IPs come back in each of its
# status writes, and a valid text stays valid.
_VALID_IPS: set[str] = set()
_VALID_IPS_MAX = 8192


def enum(
    value: Any, path: field.Path, supported: tuple[str, ...], *, required: bool = True
) -> field.ErrorList:
    """The common "required, else one of" enum check (supported listed in upstream's order)."""
    if not value:
        return field.ErrorList([field.required(path)] if required else [])
    if value not in supported:
        return field.ErrorList([field.not_supported(path, value, supported)])
    return field.ErrorList()


# --- quantities -----------------------------------------------------------------------

QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": decimal.Decimal("1e-9"),
    "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"),
    "": decimal.Decimal(1),
    "k": decimal.Decimal("1e3"),
    "M": decimal.Decimal("1e6"),
    "G": decimal.Decimal("1e9"),
    "T": decimal.Decimal("1e12"),
    "P": decimal.Decimal("1e15"),
    "E": decimal.Decimal("1e18"),
}


def quantity_value(value: Any) -> decimal.Decimal | None:
    """The numeric value of a resource quantity, or None if it does not parse.

    Only comparisons are needed here (request <= limit, >= 0, QoS), so an
    exact Decimal is enough; canonical formatting belongs to machinery.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return decimal.Decimal(str(value))
    if not isinstance(value, str):
        return None
    return _quantity_text_value(value)


@functools.lru_cache(maxsize=4096)
def _quantity_text_value(value: str) -> decimal.Decimal | None:
    # Few distinct quantities are written (100m, 128Mi, ...) and a Decimal is
    # immutable, so each text is parsed once.
    text = value.strip()
    number_end = 0
    while number_end < len(text) and (text[number_end] in "+-.0123456789"):
        number_end += 1
    number, suffix = text[:number_end], text[number_end:]
    try:
        amount = decimal.Decimal(number)
    except decimal.InvalidOperation:
        return None
    if suffix in _BINARY_SUFFIXES:
        return amount * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return amount * _DECIMAL_SUFFIXES[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return amount * decimal.Decimal(10) ** int(suffix[1:])
        except ValueError:
            return None
    return None
