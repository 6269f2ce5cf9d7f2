"""AdmissionChain awaits only the plugins whose declared resources match (decision 0035)
and only the hooks a plugin overrides."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, ClassVar

from kajitori.admission.chain import AdmissionChain, Plugin
from kajitori.registry.generic.request import RequestContext


class _Recorder(Plugin):
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    async def admit(self, store: Any, operation: str, obj: Any, old: Any, ctx: Any) -> None:
        self.calls.append(f"admit:{self.name}")

    async def validate(self, store: Any, operation: str, obj: Any, old: Any, ctx: Any) -> None:
        self.calls.append(f"validate:{self.name}")

    async def validate_delete(self, store: Any, obj: Any, ctx: Any, options: Any = None) -> None:
        self.calls.append(f"delete:{self.name}")


class _PodsOnly(_Recorder):
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset()


def _store(group: str, plural: str) -> Any:
    return SimpleNamespace(info=SimpleNamespace(group=group, plural=plural))


def _run(chain: AdmissionChain, store: Any) -> None:
    ctx = RequestContext()
    asyncio.run(chain.admit(store, "CREATE", {}, None, ctx))
    asyncio.run(chain.validate(store, "CREATE", {}, None, ctx))
    asyncio.run(chain.validate_delete(store, {}, ctx))


def test_declared_plugins_run_only_for_their_resources_in_order() -> None:
    calls: list[str] = []
    chain = AdmissionChain([_Recorder("a", calls), _PodsOnly("pods", calls), _Recorder("b", calls)])
    _run(chain, _store("", "configmaps"))
    assert calls == [
        "admit:a",
        "admit:b",
        "validate:a",
        "validate:b",
        "delete:a",
        "delete:pods",
        "delete:b",
    ]
    calls.clear()
    _run(chain, _store("", "pods"))
    assert calls == [
        "admit:a",
        "admit:pods",
        "admit:b",
        "validate:a",
        "validate:b",
        "delete:a",
        "delete:pods",
        "delete:b",
    ]
    calls.clear()
    _run(chain, _store("apps", "pods"))  # same plural, other group: not the plugin's
    assert "admit:pods" not in calls


class _AdmitOnly(Plugin):
    """Overrides ``admit`` alone: its other hooks are ``Plugin``'s no-ops."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def admit(self, store: Any, operation: str, obj: Any, old: Any, ctx: Any) -> None:
        self.calls.append("admit:only")


def test_the_chain_awaits_only_the_hooks_a_plugin_overrides() -> None:
    calls: list[str] = []
    only = _AdmitOnly(calls)
    chain = AdmissionChain([_Recorder("a", calls), only])
    _run(chain, _store("", "configmaps"))
    assert calls == ["admit:a", "admit:only", "validate:a", "delete:a"]
    configmaps = ("", "configmaps")
    assert chain._admitters[configmaps] == (chain.plugins[0], only)
    assert chain._validators[configmaps] == (chain.plugins[0],)
    assert chain._delete_validators == (chain.plugins[0],)
