"""A generated name that is already taken is generated again (upstream's RetryGenerateName).

Upstream's store retries a create with ``generateName`` up to 8 attempts in
all when the name it generated exists; only then is the AlreadyExists of the
last name the answer. A create with a name of its own conflicts at once.
The name generator is made to repeat itself so that collisions happen.
"""

from __future__ import annotations

import pytest

from kajitori.client import rest
from kajitori.machinery import names


def _configmap(**meta: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}


@pytest.fixture
def scripted_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names the generator hands out, in order (the test fills the list)."""
    script: list[str] = []

    def generate(base: str) -> str:
        return base + script.pop(0)

    monkeypatch.setattr(names, "simple_name_generator", generate)
    return script


async def test_a_taken_generated_name_is_generated_again(
    admin: rest.Client, scripted_names: list[str]
) -> None:
    await admin.create(rest.CONFIGMAPS, _configmap(name="cm-aaaaa"), namespace="default")
    scripted_names.extend(["aaaaa", "aaaaa", "bbbbb"])
    created = await admin.create(
        rest.CONFIGMAPS, _configmap(generateName="cm-"), namespace="default"
    )
    assert created["metadata"]["name"] == "cm-bbbbb"
    assert created["metadata"]["generateName"] == "cm-"
    stored = await admin.get(rest.CONFIGMAPS, "cm-bbbbb", namespace="default")
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]
    assert not scripted_names


async def test_eight_taken_names_are_a_conflict(
    admin: rest.Client, scripted_names: list[str]
) -> None:
    await admin.create(rest.CONFIGMAPS, _configmap(name="cm-aaaaa"), namespace="default")
    scripted_names.extend(["aaaaa"] * 8 + ["ccccc"])
    with pytest.raises(rest.ApiError) as raised:
        await admin.create(rest.CONFIGMAPS, _configmap(generateName="cm-"), namespace="default")
    assert raised.value.code == 409
    assert raised.value.status["reason"] == "AlreadyExists"
    assert raised.value.status["details"]["name"] == "cm-aaaaa"
    assert scripted_names == ["ccccc"]  # eight attempts, no ninth


async def test_a_chosen_name_that_is_taken_is_not_replaced(admin: rest.Client) -> None:
    await admin.create(rest.CONFIGMAPS, _configmap(name="mine"), namespace="default")
    with pytest.raises(rest.ApiError) as raised:
        await admin.create(
            rest.CONFIGMAPS, _configmap(name="mine", generateName="mine-"), namespace="default"
        )
    assert raised.value.code == 409
