"""Leader election through a Lease, between candidates talking to a real in-process API server."""

from __future__ import annotations

import asyncio

import pytest

from kajitori.client import leaderelection, rest

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}


def _config(identity: str) -> leaderelection.Config:
    return leaderelection.Config(name="demo-component", identity=identity, **FAST)


async def _lease(client: rest.Client) -> dict:  # type: ignore[type-arg]
    return await client.get(rest.LEASES, "demo-component", namespace="kube-system")


async def _wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_config_refuses_inconsistent_timings() -> None:
    with pytest.raises(ValueError, match="leaseDuration must be greater than renewDeadline"):
        leaderelection.Config(name="x", lease_duration=5, renew_deadline=5, retry_period=1)
    with pytest.raises(ValueError, match="renewDeadline must be greater than retryPeriod"):
        leaderelection.Config(name="x", lease_duration=15, renew_deadline=2, retry_period=2)


async def test_one_leader_then_a_takeover_when_it_stops_renewing(admin: rest.Client) -> None:
    started: list[str] = []
    first = leaderelection.LeaderElector(admin, _config("first"))
    second = leaderelection.LeaderElector(admin, _config("second"))

    async def lead_as(name: str) -> None:
        started.append(name)
        await asyncio.Event().wait()

    task_first = asyncio.ensure_future(first.run(lambda: lead_as("first")))
    await _wait_for(lambda: _async(first.is_leader))
    task_second = asyncio.ensure_future(second.run(lambda: lead_as("second")))
    await asyncio.sleep(1.5)  # longer than the lease: the holder keeps renewing
    assert started == ["first"]
    assert not second.is_leader
    lease = await _lease(admin)
    assert lease["spec"]["holderIdentity"] == "first"
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert lease["spec"]["leaseTransitions"] == 0

    # The first candidate dies without releasing (as with kill -9): its renewals stop.
    first._release = _noop  # type: ignore[method-assign]
    task_first.cancel()
    await _wait_for(lambda: _async(second.is_leader), timeout=5.0)
    assert started == ["first", "second"]
    lease = await _lease(admin)
    assert lease["spec"]["holderIdentity"] == "second"
    assert lease["spec"]["leaseTransitions"] == 1
    task_second.cancel()
    await asyncio.gather(task_first, task_second, return_exceptions=True)


async def test_a_clean_stop_releases_the_lease_for_an_immediate_successor(
    admin: rest.Client,
) -> None:
    stop = asyncio.Event()
    done = asyncio.Event()

    async def lead() -> None:
        await stop.wait()

    kept = asyncio.ensure_future(leaderelection.run_elected(admin, _config("leaving"), lead, stop))
    await _wait_for(lambda: _holder_is(admin, "leaving"))
    stop.set()
    assert await kept is True
    lease = await _lease(admin)
    assert lease["spec"]["holderIdentity"] in ("", None)

    successor = leaderelection.LeaderElector(
        admin,
        leaderelection.Config(
            name="demo-component",
            identity="next",
            lease_duration=30,
            renew_deadline=20,
            retry_period=0.1,
        ),
    )

    async def lead_next() -> None:
        done.set()

    # With a 30 s lease still "held", only the release lets this win at once.
    await asyncio.wait_for(successor.run(lead_next), timeout=3.0)
    assert done.is_set()


async def test_leadership_is_lost_when_the_lease_is_taken(admin: rest.Client) -> None:
    elector = leaderelection.LeaderElector(admin, _config("victim"))

    async def lead() -> None:
        await asyncio.Event().wait()

    stop = asyncio.Event()
    campaign = asyncio.ensure_future(
        leaderelection.run_elected(admin, _config("victim"), lead, stop)
    )
    await _wait_for(lambda: _holder_is(admin, "victim"))
    # Someone else overwrites the Lease with a long duration: renewals now fail. (A renewal
    # may land between our read and our write: read again then, as any writer would.)
    for _ in range(10):
        lease = await _lease(admin)
        lease["spec"]["holderIdentity"] = "usurper"
        lease["spec"]["leaseDurationSeconds"] = 3600
        try:
            await admin.update(rest.LEASES, lease, namespace="kube-system")
            break
        except rest.ApiError as exc:
            assert exc.conflict
    else:
        raise AssertionError("the Lease could not be taken")
    assert await asyncio.wait_for(campaign, timeout=5.0) is False
    assert not elector.is_leader


async def _holder_is(client: rest.Client, identity: str) -> bool:
    try:
        return (await _lease(client))["spec"].get("holderIdentity") == identity
    except rest.ApiError:
        return False


async def _async(value: bool) -> bool:
    return value


async def _noop() -> None:
    return None


async def test_release_over_a_stale_copy_rereads_and_still_releases(admin: rest.Client) -> None:
    """A renewal the stop cut short may have landed unseen: the release retries on the conflict."""
    elector = leaderelection.LeaderElector(admin, _config("stale"))
    assert await elector._attempt()
    stale = elector._observed
    assert stale is not None
    lease = await _lease(admin)
    lease["spec"]["renewTime"] = "2030-01-01T00:00:00.000000Z"  # the unseen renewal
    await admin.update(rest.LEASES, lease, namespace="kube-system")
    elector._observed = stale
    await elector._release()
    assert (await _lease(admin))["spec"]["holderIdentity"] in ("", None)
