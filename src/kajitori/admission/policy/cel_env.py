"""Evaluating a policy's CEL expressions against one request.

Owns the run-time side of upstream's admission CEL environment
(k8s.io/apiserver/pkg/admission/plugin/cel and pkg/cel/library/authz.go):

* the variables: ``object`` and ``oldObject`` (null where absent: no
  ``object`` on DELETE, no ``oldObject`` on CREATE), ``request`` (the
  AdmissionRequest without its objects), ``namespaceObject`` (the
  namespace's metadata, spec and status; null for cluster-scoped requests),
  ``params`` (null when the binding names none), ``authorizer`` (except in
  message expressions) and ``variables``;
* composition: a ``variables.x`` is evaluated when an expression that reads it
  runs, at most once per evaluation; an error in it becomes that
  expression's error (``composited variable "x" fails to evaluate: ...``);
* the authorizer library: ``authorizer.group(g).resource(r).namespace(n)
  .name(x).subresource(s).check(verb)``, ``authorizer.path(p).check(verb)``,
  ``authorizer.serviceAccount(ns, name)``, ``authorizer.requestResource``,
  and on a decision ``allowed()``, ``reason()``, ``errored()``, ``error()``.
  Like the CRD libraries, its values are tagged maps (the ``cel`` package
  cannot define types), and checks are answered by the server's authorizer;
* errors in upstream's words (``expression '<e>' resulted in error: <why>``).

Kubernetes' CEL libraries come from ``api.apiextensions_v1.cel_library``;
expressions compile through ``api.apiextensions_v1.cel`` (optional syntax
rewritten, programs cached by source).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kajitori.api.admissionregistration_v1 import policy_cel
from kajitori.api.apiextensions_v1 import cel as crd_cel
from kajitori.api.apiextensions_v1 import cel_library
from kajitori.registry.authorization.authorizer import Attributes, Authorizer
from kajitori.registry.generic.request import UserInfo

Object = dict[str, Any]

_TAG = "@kj"
_WRAPPED = re.compile(
    r"^Function '[^']*' error: (?:Python function call failed: \w+: )?(.*?)"
    r"(?:\. Check function arguments and their types\.)?$",
    re.S,
)
_EVAL_ERRORS = (ValueError, RuntimeError, KeyError, TypeError, ArithmeticError)


@functools.cache
def _cel_package() -> Any:
    """The ``cel`` package (imported once an expression is compiled, never at start-up)."""
    return importlib.import_module("cel")


class ExpressionError(Exception):
    """An expression failed to compile or evaluate; ``str()`` is upstream's message."""


# ----- the authorizer library ------------------------------------------------------------


_CEL_TYPE_NAMES = ((bool, "bool"), (int, "int"), (float, "double"), (str, "string"),
                   (bytes, "bytes"), (list, "list"), (dict, "map"))  # fmt: skip


def type_name(value: Any) -> str:
    """The CEL type of an evaluated value, as upstream's messages name it."""
    if value is None:
        return "null_type"
    for python_type, name in _CEL_TYPE_NAMES:  # bool before int: True is an int too
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _tagged(value: Any, kind: str) -> Object:
    if not (isinstance(value, dict) and value.get(_TAG) == kind):
        raise ValueError(f"no such overload for {kind}")
    return value


@dataclass
class AuthorizerBinding:
    """Who is asking and whom to ask: the request's user and the server's authorizer."""

    user: UserInfo
    authorizer: Authorizer | None

    def check(self, target: Object, verb: str) -> Object:
        """``<check>.check(verb)``: ask the authorizer as the target's user."""
        if self.authorizer is None:
            return _decision("NoOpinion", "", "")
        user = _user_of(target, self.user)
        if target.get(_TAG) == "pathcheck":
            attrs = Attributes(user=user, verb=verb, resource_request=False, path=target["path"])
        else:
            attrs = Attributes(
                user=user,
                verb=verb,
                api_group=target.get("group", ""),
                api_version="*",
                resource=target.get("resource", ""),
                subresource=target.get("subresource", ""),
                namespace=target.get("namespace", ""),
                name=target.get("name", ""),
            )
        decision, reason = self.authorizer.authorize(attrs)
        return _decision(decision, reason, "")

    def functions(self) -> dict[str, Callable[..., Any]]:
        """The CEL functions of an evaluation context, ``check`` bound to this request."""

        def check(value: Any, verb: str) -> Object:
            return self.check(_with(value, ("resourcecheck", "pathcheck")), verb)

        return {**FUNCTIONS, "check": check}


def _decision(decision: str, reason: str, error: str) -> Object:
    return {_TAG: "decision", "decision": decision, "reason": reason, "error": error}


def _user_of(target: Object, user: UserInfo) -> UserInfo:
    account = target.get("serviceAccount")
    if not account:
        return user
    namespace, name = account
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
    )


def _with(value: Any, kinds: Sequence[str], **changes: Any) -> Object:
    if not (isinstance(value, dict) and value.get(_TAG) in kinds):
        raise ValueError("no such overload")
    return {**value, **changes}


def _group(value: Any, group: str) -> Object:
    base = _tagged(value, "authorizer")
    return {**base, _TAG: "groupcheck", "group": group}


def _resource(value: Any, resource: str) -> Object:
    return _with(value, ("groupcheck",), **{_TAG: "resourcecheck", "resource": resource})


def _subresource(value: Any, subresource: str) -> Object:
    return _with(value, ("resourcecheck",), subresource=subresource)


def _namespace(value: Any, namespace: str) -> Object:
    return _with(value, ("resourcecheck",), namespace=namespace)


def _name(value: Any, name: str) -> Object:
    return _with(value, ("resourcecheck",), name=name)


def _path(value: Any, path: str) -> Object:
    base = _tagged(value, "authorizer")
    return {**base, _TAG: "pathcheck", "path": path}


def _service_account(value: Any, namespace: str, name: str) -> Object:
    base = _tagged(value, "authorizer")
    return {**base, "serviceAccount": [namespace, name], "requestResource": None}


def _allowed(value: Any) -> bool:
    return _tagged(value, "decision")["decision"] == "Allow"


def _reason(value: Any) -> str:
    return str(_tagged(value, "decision")["reason"])


def _errored(value: Any) -> bool:
    return bool(_tagged(value, "decision")["error"])


def _error(value: Any) -> str:
    return str(_tagged(value, "decision")["error"])


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **cel_library.FUNCTIONS,
    "group": _group,
    "resource": _resource,
    "subresource": _subresource,
    "namespace": _namespace,
    "name": _name,
    "path": _path,
    "serviceAccount": _service_account,
    "allowed": _allowed,
    "reason": _reason,
    "errored": _errored,
    "error": _error,
}


def authorizer_value(request: Mapping[str, Any]) -> Object:
    """The ``authorizer`` variable, with ``requestResource`` for the request's own resource."""
    resource = request.get("resource") or {}
    return {
        _TAG: "authorizer",
        "requestResource": {
            _TAG: "resourcecheck",
            "group": resource.get("group", ""),
            "resource": resource.get("resource", ""),
            "subresource": request.get("subResource", ""),
            "namespace": request.get("namespace", ""),
            "name": request.get("name", ""),
        },
    }


# ----- evaluation ------------------------------------------------------------------------


@dataclass
class Inputs:
    """The variables of one evaluation (one request, one binding, one param)."""

    object: Object | None
    old_object: Object | None
    request: Object
    namespace_object: Object | None
    params: Object | None
    has_params: bool
    authorizer: AuthorizerBinding
    # name -> expression, in the policy's order
    variables: Mapping[str, str] = field(default_factory=dict)
    _values: dict[str, Any] = field(default_factory=dict)
    _errors: dict[str, str] = field(default_factory=dict)

    def context(self, source: str, *, with_authorizer: bool) -> Any:
        """A CEL context for ``source``, evaluating the variables it reads first."""
        values: dict[str, Any] = {
            "object": self.object,
            "oldObject": self.old_object,
            "request": self.request,
            "namespaceObject": self.namespace_object,
        }
        if self.has_params:
            values["params"] = self.params
        if with_authorizer:
            values["authorizer"] = authorizer_value(self.request)
        if self.variables:
            values["variables"] = self._variables_for(source)
        return _cel_package().Context(variables=values, functions=self.authorizer.functions())

    def _variables_for(self, source: str) -> dict[str, Any]:
        wanted = _needed(source, self.variables)
        for name in self.variables:
            if name in wanted and name not in self._values and name not in self._errors:
                self._evaluate_variable(name)
        return {n: self._values[n] for n in wanted if n in self._values}

    def _evaluate_variable(self, name: str) -> None:
        expression = self.variables[name]
        try:
            compiled = crd_cel.compile_rule(expression)
        except (ValueError, RuntimeError) as exc:
            self._errors[name] = f'composited variable "{name}" fails to compile: {exc}'
            return
        # A variable that reads itself (only a policy stored unchecked could) must not recurse.
        self._errors[name] = f'composited variable "{name}" fails to evaluate: no such key: {name}'
        try:
            context = self.context(expression, with_authorizer=True)
            self._values[name] = compiled.program.execute(context)
        except _EVAL_ERRORS as exc:
            self._errors[name] = (
                f'composited variable "{name}" fails to evaluate: {_why(exc, self)}'
            )
            return
        del self._errors[name]

    def variable_error(self, exc: BaseException) -> str | None:
        """The composited variable's error when ``exc`` is the read of a failed variable."""
        if isinstance(exc, KeyError) and exc.args and exc.args[0] in self._errors:
            return self._errors[exc.args[0]]
        return None


def _needed(source: str, variables: Mapping[str, str]) -> set[str]:
    """The variables ``source`` reads, directly or through other variables."""
    wanted: set[str] = set()
    pending = policy_cel.references_for(source)
    while pending:
        name = pending.pop()
        if name in wanted or name not in variables:
            continue
        wanted.add(name)
        pending.extend(policy_cel.references_for(variables[name]))
    return wanted


def _why(exc: BaseException, inputs: Inputs) -> str:
    composed = inputs.variable_error(exc)
    if composed is not None:
        return composed
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    if isinstance(exc, TypeError):
        return "no such overload"
    text = str(exc)
    wrapped = _WRAPPED.match(text)
    return wrapped.group(1) if wrapped else text


def evaluate(source: str, inputs: Inputs, *, with_authorizer: bool = True) -> Any:
    """The value of ``source``; raises ExpressionError with upstream's message."""
    try:
        compiled = crd_cel.compile_rule(source)
    except (ValueError, RuntimeError) as exc:
        raise ExpressionError(f"compilation error: compilation failed: {exc}") from exc
    try:
        return compiled.program.execute(inputs.context(source, with_authorizer=with_authorizer))
    except _EVAL_ERRORS as exc:
        raise ExpressionError(
            f"expression '{source}' resulted in error: {_why(exc, inputs)}"
        ) from exc
