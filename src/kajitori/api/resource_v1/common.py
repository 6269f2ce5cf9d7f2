"""Checks every resource.k8s.io/v1 kind shares (upstream: pkg/apis/resource/validation).

Owns the list, set and map walkers with upstream's limits (a list longer
than its limit is one ``Too many`` error and nothing else, for DoS
protection; duplicates in a set are ``Duplicate value`` on the later item),
the name rules (driver names as CSI driver names, pool names as
slash-separated DNS subdomains, device and request names as DNS labels,
qualified attribute names as ``domain/C-identifier``), CEL device selectors
(compiled with kajitori's CEL at validation, as upstream, with the ``device``
variable; a stored expression is not compiled again), opaque driver
configuration (a JSON object of at most 10 KiB) and node selectors.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from kajitori.api import resource_v1 as limits
from kajitori.api.admissionregistration_v1 import policy_cel, webhooks
from kajitori.api.apiextensions_v1 import cel_cost
from kajitori.api.core_v1 import validation as core
from kajitori.api.storage_v1.validation import csidrivers
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]
T = TypeVar("T")
ItemCheck = Callable[[Any, field.Path], field.ErrorList]

REQUEST_REF = (
    "must be the name of a request in the claim or the name of a request and a "
    "subrequest separated by '/'"
)


def as_dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ----- collections ----------------------------------------------------------------


SpecValidator = Callable[[Object, Object | None, field.Path], field.ErrorList]


def validate_cluster_object(
    obj: Object, old: Object | None, validate_spec: SpecValidator
) -> field.ErrorList:
    """A cluster-scoped kind's metadata (create, or update against ``old``), then its spec."""
    if old is None:
        errs = objectmeta.validate_object_meta(
            as_dict(obj.get("metadata")),
            namespaced=False,
            name_validator=names.name_is_dns_subdomain,
            path=field.Path("metadata"),
        )
    else:
        errs = objectmeta.validate_object_meta_update(
            as_dict(obj.get("metadata")), as_dict(old.get("metadata")), path=field.Path("metadata")
        )
    old_spec = None if old is None else as_dict(old.get("spec"))
    errs.extend(validate_spec(as_dict(obj.get("spec")), old_spec, field.Path("spec")))
    return errs


def validate_slice(
    items: Any, max_size: int, check: ItemCheck, path: field.Path
) -> field.ErrorList:
    """Each item, unless there are more than ``max_size`` (negative: no limit)."""
    values = as_list(items)
    if 0 <= max_size < len(values):
        return field.ErrorList([field.too_many(path, len(values), max_size)])
    errs = field.ErrorList()
    for i, item in enumerate(values):
        errs.extend(check(item, path.index(i)))
    return errs


def validate_set(
    items: Any,
    max_size: int,
    check: ItemCheck,
    key: Callable[[Any], Hashable],
    path: field.Path,
    shown: Callable[[Any], Any] | None = None,
) -> field.ErrorList:
    """``validate_slice`` plus a ``Duplicate value`` for each repeated key."""
    values = as_list(items)
    errs = validate_slice(values, max_size, check, path)
    if 0 <= max_size < len(values):
        return errs
    seen: set[Hashable] = set()
    for i, item in enumerate(values):
        k = key(item)
        if k in seen:
            errs.append(field.duplicate(path.index(i), k if shown is None else shown(k)))
        seen.add(k)
    return errs


def truncate_key(key: str, max_len: int) -> str:
    """A map key as it appears in a field path: long keys lose their middle."""
    max_len = max(max_len, 16)
    if len(key) <= max_len:
        return key
    remaining = max_len - 3
    return key[: (remaining + 1) // 2] + "..." + key[len(key) - remaining // 2 :]


def validate_map(
    values: Any,
    max_size: int,
    truncate_len: int,
    check_key: Callable[[str, field.Path], field.ErrorList],
    check_item: ItemCheck,
    path: field.Path,
) -> field.ErrorList:
    """Keys are checked at ``path`` itself, items at ``path[key]`` (upstream's layout)."""
    mapping = as_dict(values)
    if 0 <= max_size < len(mapping):
        return field.ErrorList([field.too_many(path, len(mapping), max_size)])
    errs = field.ErrorList()
    for key, item in mapping.items():
        errs.extend(check_key(key, path))
        errs.extend(check_item(item, path.key(truncate_key(key, truncate_len))))
    return errs


# ----- names ------------------------------------------------------------------------


def validate_driver_name(name: Any, path: field.Path) -> field.ErrorList:
    return csidrivers.validate_csi_driver_name(name, path)


def validate_dns_label(name: Any, path: field.Path) -> field.ErrorList:
    return core.dns1123_label(text(name), path)


# Devices, requests and counters are all named by DNS labels.
validate_device_name = validate_dns_label
validate_request_name = validate_dns_label
validate_counter_name = validate_dns_label


def validate_device_class_name(name: Any, path: field.Path) -> field.ErrorList:
    if not text(name):
        return field.ErrorList([field.required(path)])
    return core.dns1123_subdomain(text(name), path)


def validate_pool_name(name: Any, path: field.Path) -> field.ErrorList:
    value = text(name)
    if not value:
        return field.ErrorList([field.required(path)])
    errs = field.ErrorList()
    if len(value) > limits.POOL_NAME_MAX_LENGTH:
        errs.append(field.too_long(path, "", limits.POOL_NAME_MAX_LENGTH))
    for part in value.split("/"):
        errs.extend(core.dns1123_subdomain(part, path))
    return errs


def validate_node_name(name: Any, path: field.Path) -> field.ErrorList:
    value = text(name)
    return core.from_details(path, value, names.name_is_dns_subdomain(value, False))


def validate_c_identifier(value: str, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if len(value) > limits.DEVICE_MAX_ID_LENGTH:
        errs.append(field.too_long(path, "", limits.DEVICE_MAX_ID_LENGTH))
    errs.extend(core.from_details(path, value, names.is_c_identifier(value)))
    return errs


def validate_qualified_name(name: Any, path: field.Path) -> field.ErrorList:
    """An attribute or capacity name: ``id`` or ``domain/id``."""
    value = text(name)
    parts = value.split("/")
    if len(parts) == 1:
        return validate_c_identifier(parts[0], path)
    if len(parts) > 2:
        return field.ErrorList([field.invalid(path, value, "must not contain more than one slash")])
    errs = field.ErrorList()
    if not parts[0]:
        errs.append(field.invalid(path, "", "the domain must not be empty"))
    else:
        errs.extend(validate_driver_name(parts[0], path))
    if not parts[1]:
        errs.append(field.invalid(path, "", "the name must not be empty"))
    else:
        errs.extend(validate_c_identifier(parts[1], path))
    return errs


def validate_fully_qualified_name(name: Any, path: field.Path) -> field.ErrorList:
    errs = validate_qualified_name(name, path)
    if "/" not in text(name):
        detail = "a fully qualified name must be a domain and a name separated by a slash"
        errs.append(field.invalid(path, text(name), detail))
    return errs


def validate_label_value(value: Any, path: field.Path) -> field.ErrorList:
    return core.label_value(text(value), path)


def validate_label_name(value: Any, path: field.Path) -> field.ErrorList:
    return objectmeta.validate_label_name(text(value), path)


def validate_uid(value: Any, path: field.Path) -> field.ErrorList:
    uid = text(value)
    try:
        uuid.UUID(uid)
    except ValueError:
        # Google's uuid package words the one problem this can be, for our inputs.
        detail = f"error validating uid: invalid UUID length: {len(uid)}"
        if len(uid) in (32, 36, 38, 45):
            detail = "error validating uid: invalid UUID format"
        return field.ErrorList([field.invalid(path, uid, detail)])
    if len(uid) != 36 or uid != uid.lower():
        detail = (
            "uid must be in RFC 4122 normalized form, "
            "`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with lowercase hexadecimal characters"
        )
        return field.ErrorList([field.invalid(path, uid, detail)])
    return field.ErrorList()


# ----- CEL ----------------------------------------------------------------------------

_BOUND = re.compile(r"\bcel\.bind\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
# What cel-go's checker would call these result types; anything else passes.
_NOT_BOOL = frozenset({"int", "uint", "double", "string", "bytes", "null_type"})


def _output_type(expression: str) -> str:
    tree = cel_cost.parse(expression)
    if tree is None:
        return policy_cel.UNKNOWN
    found = policy_cel.infer(tree, {}, frozenset())
    return found


def cel_problem(expression: str) -> str | None:
    """Why a device selector does not compile (upstream's wording), or None.

    The ``device`` variable is all an expression sees; ``cel.bind`` names
    count as declared inside it.
    """
    declared = frozenset({"device", "cel", *_BOUND.findall(expression)})
    problem = webhooks.expression_problem(expression, declared)
    if problem is not None:
        return problem
    found = _output_type(expression)
    if found in _NOT_BOOL or found.startswith(("list(", "map(")):
        return f"must evaluate to bool or the unknown type, not {found}"
    return None


def validate_cel_expression(expression: Any, path: field.Path, *, stored: bool) -> field.ErrorList:
    """A device selector's CEL expression; one already stored is trusted as it was."""
    if stored:
        return field.ErrorList()
    value = text(expression)
    if len(value) > limits.CEL_SELECTOR_EXPRESSION_MAX_LENGTH:
        return field.ErrorList(
            [field.too_long(path, "", limits.CEL_SELECTOR_EXPRESSION_MAX_LENGTH)]
        )
    problem = cel_problem(value)
    if problem is None:
        return field.ErrorList()
    return field.ErrorList([field.invalid(path, value, problem)])


def validate_selector(selector: Any, path: field.Path, *, stored: bool) -> field.ErrorList:
    cel = as_dict(selector).get("cel")
    if not isinstance(cel, dict):
        return field.ErrorList([field.required(path.child("cel"))])
    return validate_cel_expression(
        cel.get("expression"), path.child("cel", "expression"), stored=stored
    )


def validate_selectors(selectors: Any, path: field.Path, *, stored: bool) -> field.ErrorList:
    return validate_slice(
        selectors,
        limits.DEVICE_SELECTORS_MAX_SIZE,
        lambda s, p: validate_selector(s, p, stored=stored),
        path,
    )


# ----- opaque configuration ----------------------------------------------------------


def validate_raw_extension(
    value: Any, path: field.Path, *, stored: bool, max_length: int
) -> field.ErrorList:
    """Opaque JSON: present, at most ``max_length`` bytes (new values), and an object."""
    if value is None:
        return field.ErrorList([field.required(path)])
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if not stored and len(raw) > max_length:
        return field.ErrorList([field.too_long(path, "", max_length)])
    if not isinstance(value, dict):
        return field.ErrorList(
            [field.invalid(path, "<value omitted>", "must be a valid JSON object")]
        )
    return field.ErrorList()


def validate_opaque_configuration(
    config: Any, path: field.Path, *, stored: bool
) -> field.ErrorList:
    opaque = as_dict(config)
    errs = validate_driver_name(opaque.get("driver"), path.child("driver"))
    errs.extend(
        validate_raw_extension(
            opaque.get("parameters"),
            path.child("parameters"),
            stored=stored,
            max_length=limits.OPAQUE_PARAMETERS_MAX_LENGTH,
        )
    )
    return errs


def validate_device_configuration(
    config: Any, path: field.Path, *, stored: bool
) -> field.ErrorList:
    opaque = as_dict(config).get("opaque")
    if not isinstance(opaque, dict):
        return field.ErrorList([field.required(path.child("opaque"))])
    return validate_opaque_configuration(opaque, path.child("opaque"), stored=stored)


# ----- node selectors (core's ValidateNodeSelector) ---------------------------------


def _validate_node_selector_requirement(req: Any, path: field.Path) -> field.ErrorList:
    requirement = as_dict(req)
    values = as_list(requirement.get("values"))
    operator = requirement.get("operator")
    errs = field.ErrorList()
    if operator in ("In", "NotIn"):
        if not values:
            detail = "must be specified when `operator` is 'In' or 'NotIn'"
            errs.append(field.required(path.child("values"), detail))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            errs.append(field.forbidden(path.child("values"), detail))
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            detail = "must be specified single value when `operator` is 'Lt' or 'Gt'"
            errs.append(field.required(path.child("values"), detail))
    else:
        errs.append(
            field.invalid(path.child("operator"), operator, "not a valid selector operator")
        )
    errs.extend(validate_label_name(requirement.get("key"), path.child("key")))
    for i, value in enumerate(values):
        errs.extend(validate_label_value(value, path.child("values").index(i)))
    return errs


def _validate_node_field_requirement(req: Any, path: field.Path) -> field.ErrorList:
    requirement = as_dict(req)
    values = as_list(requirement.get("values"))
    errs = field.ErrorList()
    if requirement.get("operator") in ("In", "NotIn"):
        if len(values) != 1:
            detail = (
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"
            )
            errs.append(field.required(path.child("values"), detail))
    else:
        errs.append(
            field.invalid(
                path.child("operator"), requirement.get("operator"), "not a valid selector operator"
            )
        )
    if requirement.get("key") != "metadata.name":
        errs.append(
            field.invalid(
                path.child("key"), requirement.get("key"), "not a valid field selector key"
            )
        )
    else:
        for i, value in enumerate(values):
            errs.extend(validate_node_name(value, path.child("values").index(i)))
    return errs


def validate_node_selector(selector: Any, path: field.Path) -> field.ErrorList:
    terms_path = path.child("nodeSelectorTerms")
    terms = as_list(as_dict(selector).get("nodeSelectorTerms"))
    if not terms:
        return field.ErrorList(
            [field.required(terms_path, "must have at least one node selector term")]
        )
    errs = field.ErrorList()
    for i, term in enumerate(terms):
        term_path = terms_path.index(i)
        for j, req in enumerate(as_list(as_dict(term).get("matchExpressions"))):
            errs.extend(
                _validate_node_selector_requirement(
                    req, term_path.child("matchExpressions").index(j)
                )
            )
        for j, req in enumerate(as_list(as_dict(term).get("matchFields"))):
            errs.extend(
                _validate_node_field_requirement(req, term_path.child("matchFields").index(j))
            )
    return errs


def string_key(item: Any) -> Hashable:
    return text(item) if isinstance(item, str) else json.dumps(item, sort_keys=True)


def name_key(item: Any) -> Hashable:
    return text(as_dict(item).get("name"))


def gather_request_names(devices: Mapping[str, Any]) -> dict[str, set[str] | None]:
    """Each request's name, with the names of its ``firstAvailable`` alternatives."""
    found: dict[str, set[str] | None] = {}
    for request in as_list(devices.get("requests")):
        request = as_dict(request)
        subs = as_list(request.get("firstAvailable"))
        found[text(request.get("name"))] = (
            {text(as_dict(s).get("name")) for s in subs} if subs else None
        )
    return found


def has_request(request_names: Mapping[str, set[str] | None], ref: str) -> bool:
    segments = ref.split("/")
    if len(segments) > 2 or segments[0] not in request_names:
        return False
    if len(segments) == 1:
        return True
    subs = request_names[segments[0]]
    return subs is not None and segments[1] in subs


def validate_request_name_ref(
    ref: Any, path: field.Path, request_names: Mapping[str, set[str] | None]
) -> field.ErrorList:
    name = text(ref)
    segments = name.split("/")
    if len(segments) > 2:
        return field.ErrorList([field.invalid(path, name, REQUEST_REF)])
    errs = field.ErrorList()
    for segment in segments:
        errs.extend(validate_request_name(segment, path))
    if not has_request(request_names, name):
        errs.append(field.invalid(path, name, REQUEST_REF))
    return errs


def validate_request_refs(
    refs: Any, path: field.Path, request_names: Mapping[str, set[str] | None]
) -> field.ErrorList:
    return validate_set(
        refs,
        limits.DEVICE_REQUESTS_MAX_SIZE,
        lambda r, p: validate_request_name_ref(r, p, request_names),
        string_key,
        path,
    )
