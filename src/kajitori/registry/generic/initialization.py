"""The "watch initialized" signal API Priority and Fairness waits for.

Upstream's apiserver/pkg/util/flowcontrol/apf_context.go: a watch holds a seat
of its priority level only while it is being set up and its initial events
are sent; storage says when that is over. Here the server's flow-control
filter (``server/flowcontrol``) puts a callback in ``WATCH_INITIALIZED``
before it runs a watch, and ``Store.watch_batches`` calls
``watch_initialized()`` once the initial events have been taken (a generator
resumes only when its consumer asks for the next batch, so they have been
written by then), or at once for a watch without initial events.

A context variable, not a parameter: the store sits below the server and
knows nothing of requests; tasks the watch handler starts copy the context,
so the callback reaches the store's generator wherever it is iterated.
Anything else that watches a store (listers, controllers) runs with the
default, None, and the call does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

WATCH_INITIALIZED: ContextVar[Callable[[], None] | None] = ContextVar(
    "kajitori_watch_initialized", default=None
)


def watch_initialized() -> None:
    """Tell the request's flow control, if any, that this watch's setup is done."""
    signal = WATCH_INITIALIZED.get()
    if signal is not None:
        signal()
