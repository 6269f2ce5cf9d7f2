"""The consumer side of ``watch_into``, shared by the storage backends.

``interface.WatchInto`` says what ``watch_into`` promises; this module holds
what every backend does the same way to keep that promise, so that each
backend keeps only how it finds a batch's watchers (SQLite's commit callback,
etcd's stream callback):

* ``Sink``: one consumer as a backend's fan-out holds it. It takes the part of
  each batch after its revision, ends once (``end``), and leaves the fan-out
  when its ``deliver`` raises or its consumer stops it (``stop``).
* ``drain``: ``watch_into`` over a ``watch`` stream, through a task, for the
  batches a backend cannot hand over in its own callbacks (SQLite's replay of
  history).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Self

from kajitori.storage import interface


class Sink:
    """One ``watch_into`` consumer in a backend's fan-out.

    Nothing queues, so it never falls behind. ``leave`` takes it out of the
    fan-out: when its ``deliver`` raises (the watch then ends with that
    error) and when its consumer calls ``stop`` (``end`` is then not called).
    """

    __slots__ = ("_after", "_deliver", "_end", "_leave", "closed", "prefix")

    def __init__(
        self,
        prefix: str,
        after_revision: int,
        deliver: interface.Deliver,
        end: interface.End,
        leave: Callable[[Self], None],
    ) -> None:
        self.prefix = prefix
        self._after = after_revision
        self._deliver = deliver
        self._end = end
        self._leave = leave
        self.closed = False

    def offer(self, batch: list[interface.Event]) -> None:
        """Hand over the events of ``batch`` (under the prefix) after the sink's revision."""
        if self.closed:
            return
        if batch[0].revision <= self._after:  # only a watch from a future revision
            batch = [event for event in batch if event.revision > self._after]
            if not batch:
                return
        try:
            self._deliver(batch)
        except Exception as exc:
            self.stop()
            self._end(exc)

    def end(self, error: BaseException | None = None) -> None:
        """The watch ended, cleanly (None: the backend closed) or with ``error``."""
        if not self.closed:
            self.closed = True
            self._end(error)

    def stop(self: Self) -> None:
        """The consumer stopped watching."""
        self.closed = True
        self._leave(self)


# Tasks of ``drain`` (the loop keeps only weak references to tasks).
_draining: set[asyncio.Task[None]] = set()


def drain(
    stream: AsyncIterator[list[interface.Event]], deliver: interface.Deliver, end: interface.End
) -> Callable[[], None]:
    """``watch_into`` over ``stream``: a task hands each batch to ``deliver``.

    A batch reaches ``deliver`` a loop turn after the stream yields it;
    ``end`` and the returned stop behave as ``interface.WatchInto`` says.
    """
    task = asyncio.get_running_loop().create_task(_drain(stream, deliver, end))
    _draining.add(task)
    task.add_done_callback(_draining.discard)

    def stop() -> None:
        task.cancel()

    return stop


async def _drain(
    stream: AsyncIterator[list[interface.Event]], deliver: interface.Deliver, end: interface.End
) -> None:
    try:
        async for batch in stream:
            deliver(batch)
    except Exception as exc:  # the stream's error, or the one ``deliver`` raised
        end(exc)
    else:
        end(None)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
