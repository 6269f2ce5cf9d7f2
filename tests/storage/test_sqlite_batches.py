"""``SqliteBackend``'s group commit answers as if each write ran on its own.

The writer commits everything queued as one transaction. These tests send
writes that meet in one batch (many to the same key, creates after deletes,
stale and current expected revisions) and compare every answer, the final
state and the watch events with a model that applies the same writes one at
a time, so that any shortcut in the batch path (reading a batch's rows at
once, appending them at once) has to keep those answers.
"""

from __future__ import annotations

import asyncio
import pathlib
import random
from dataclasses import dataclass
from typing import Any

from kajitori.storage import interface, sqlite


@dataclass
class _Op:
    kind: str  # create, update, delete
    key: str
    value: bytes
    expected: int


@dataclass
class _Live:
    value: bytes
    create_revision: int
    mod_revision: int


def _model(
    ops: list[_Op], state: dict[str, _Live], revision: int
) -> tuple[list[Any], list[tuple[str, str, int, bytes | None]], int]:
    """Each write applied alone, in order: answers (a revision or an error type) and events."""
    answers: list[Any] = []
    events: list[tuple[str, str, int, bytes | None]] = []
    for op in ops:
        live = state.get(op.key)
        if op.kind == "create":
            if live is not None:
                answers.append(interface.KeyExistsError)
                continue
            revision += 1
            state[op.key] = _Live(op.value, revision, revision)
            answers.append(revision)
            events.append(("PUT", op.key, revision, None))
            continue
        if live is None:
            answers.append(interface.KeyNotFoundError)
            continue
        if op.expected and op.expected != live.mod_revision:
            answers.append(interface.RevisionConflictError)
            continue
        revision += 1
        events.append(("DELETE" if op.kind == "delete" else "PUT", op.key, revision, live.value))
        if op.kind == "delete":
            del state[op.key]
            answers.append((revision, live.mod_revision))
        else:
            state[op.key] = _Live(op.value, live.create_revision, revision)
            answers.append(revision)
    return answers, events, revision


def _ops(rng: random.Random, state: dict[str, _Live], count: int, serial: int) -> list[_Op]:
    """Writes over few keys, so that one batch often touches a key several times."""
    ops = []
    for i in range(count):
        key = f"/b/k{rng.randrange(6)}"
        kind = rng.choice(("create", "create", "update", "update", "delete"))
        live = state.get(key)
        # A current expected revision is only known for the state before the batch:
        # later writes in the batch make it stale, which the model accounts for.
        expected = rng.choice((0, live.mod_revision if live else 0, 1))
        ops.append(_Op(kind, key, f"v{serial}-{i}".encode(), expected))
    return ops


async def _send(backend: sqlite.SqliteBackend, op: _Op) -> Any:
    try:
        if op.kind == "create":
            return await backend.create(op.key, op.value)
        if op.kind == "update":
            return await backend.update(op.key, op.value, expected_revision=op.expected)
        revision, prev = await backend.delete(op.key, expected_revision=op.expected)
        return (revision, prev.mod_revision)
    except interface.StorageError as exc:
        return type(exc)


async def test_a_batch_answers_as_its_writes_one_at_a_time(tmp_path: pathlib.Path) -> None:
    backend = sqlite.SqliteBackend(tmp_path / "batches.db")
    await backend.start()
    try:
        rng = random.Random(67)
        state: dict[str, _Live] = {}
        revision = await backend.current_revision()
        stream = backend.watch("/b/", after_revision=revision)
        seen: list[tuple[str, str, int, bytes | None]] = []
        for round_ in range(40):
            ops = _ops(rng, state, rng.randrange(1, 40), round_)
            expected_answers, expected_events, revision = _model(ops, state, revision)
            # Sent in one loop turn, so they reach the writer as one batch.
            answers = await asyncio.gather(*(_send(backend, op) for op in ops))
            assert answers == expected_answers, f"round {round_}"
            while len(seen) < len(expected_events):
                batch = await asyncio.wait_for(anext(stream), 10)
                seen += [
                    (e.type, e.kv.key, e.revision, e.prev_kv.value if e.prev_kv else None)
                    for e in batch
                ]
            assert seen == expected_events, f"round {round_}"
            seen.clear()
        assert await backend.current_revision() == revision
        for index in range(6):
            key = f"/b/k{index}"
            _, kv = await backend.get(key)
            live = state.get(key)
            if live is None:
                assert kv is None
            else:
                assert kv is not None
                assert (kv.value, kv.create_revision, kv.mod_revision) == (
                    live.value,
                    live.create_revision,
                    live.mod_revision,
                )
        await stream.aclose()
    finally:
        await backend.close()


async def test_a_key_sqlite_cannot_take_fails_alone(tmp_path: pathlib.Path) -> None:
    """A lone surrogate in one key fails that write; the rest of its batch commits."""
    backend = sqlite.SqliteBackend(tmp_path / "bad-key.db")
    await backend.start()
    try:
        start = await backend.current_revision()
        answers = await asyncio.gather(
            backend.create("/b/good-1", b"1"),
            backend.create("/b/bad-\udc80", b"x"),
            backend.create("/b/good-2", b"2"),
            return_exceptions=True,
        )
        assert answers[0] == start + 1 and answers[2] == start + 2
        assert isinstance(answers[1], ValueError)
        _, kv = await backend.get("/b/good-2")
        assert kv is not None and kv.value == b"2"
    finally:
        await backend.close()


async def test_writes_submitted_before_close_are_committed(tmp_path: pathlib.Path) -> None:
    """Writes submitted, but not yet answered, when close starts are committed, not lost."""
    path = tmp_path / "close.db"
    backend = sqlite.SqliteBackend(path)
    await backend.start()
    writes = [asyncio.ensure_future(backend.create(f"/b/c{i}", b"x")) for i in range(5)]
    await asyncio.sleep(0)  # each write is submitted; none is answered yet
    await backend.close()
    assert all(isinstance(revision, int) for revision in [await w for w in writes])
    reopened = sqlite.SqliteBackend(path)
    await reopened.start()
    try:
        page = await reopened.range("/b/")
        assert [kv.key for kv in page.kvs] == [f"/b/c{i}" for i in range(5)]
    finally:
        await reopened.close()
