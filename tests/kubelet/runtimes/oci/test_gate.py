"""The start gate: at most ``limit`` creations at once, containers before sandboxes, FIFO."""

from __future__ import annotations

import asyncio

from kajitori.kubelet.runtimes.oci import gate


async def _hold(
    start_gate: gate.StartGate,
    priority: int,
    name: str,
    order: list[str],
    release: asyncio.Event,
    running: list[str],
) -> None:
    async with start_gate.slot(priority):
        order.append(name)
        running.append(name)
        await release.wait()
        running.remove(name)


async def test_no_more_than_the_limit_run_and_containers_go_before_sandboxes() -> None:
    start_gate = gate.StartGate(limit=2)
    order: list[str] = []
    running: list[str] = []
    releases = {name: asyncio.Event() for name in ("s1", "s2", "s3", "s4", "c1", "c2")}

    def hold(priority: int, name: str) -> asyncio.Task[None]:
        return asyncio.create_task(
            _hold(start_gate, priority, name, order, releases[name], running)
        )

    tasks = [hold(gate.SANDBOX, name) for name in ("s1", "s2", "s3", "s4")]
    await asyncio.sleep(0)
    tasks += [hold(gate.CONTAINER, "c1"), hold(gate.CONTAINER, "c2")]
    await asyncio.sleep(0)
    assert order == ["s1", "s2"]  # the first two got in; the rest wait
    releases["s1"].set()
    await asyncio.sleep(0.01)
    # The container that arrived after s3 and s4 goes first; the limit holds.
    assert order == ["s1", "s2", "c1"] and len(running) == 2
    releases["s2"].set()
    releases["c1"].set()
    await asyncio.sleep(0.01)
    assert order == ["s1", "s2", "c1", "c2", "s3"]
    for event in releases.values():
        event.set()
    await asyncio.gather(*tasks)
    assert order == ["s1", "s2", "c1", "c2", "s3", "s4"]


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    start_gate = gate.StartGate(limit=1)
    order: list[str] = []
    running: list[str] = []
    first, second, third = asyncio.Event(), asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(start_gate, gate.SANDBOX, "a", order, first, running))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(_hold(start_gate, gate.SANDBOX, "b", order, second, running))
    after = asyncio.create_task(_hold(start_gate, gate.SANDBOX, "c", order, third, running))
    await asyncio.sleep(0)
    waiting.cancel()
    first.set()
    third.set()
    await asyncio.gather(holder, after)
    assert order == ["a", "c"]
    # Nothing is held any more: a new creation gets in at once.
    async with start_gate.slot(gate.CONTAINER):
        pass
