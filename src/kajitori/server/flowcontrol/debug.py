"""What APF shows: ``apiserver_flowcontrol_*`` metrics and the debug dumps.

The dumps are upstream's (apf_controller_debug.go): cells joined by ",\\t"
and aligned as Go's text/tabwriter aligns them with minimum width 8 and
padding 1, levels sorted by name. Our queues keep no virtual time, so
``NextDispatchR`` and ``TotalWorkSum`` are always zero seat-seconds, and each
request is one seat with no additional latency.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from kajitori.server.flowcontrol.queueset import FlowStats, LevelState, Waiter

_ZERO_SEAT_SECONDS = "0.00000000ss"
_MIN_WIDTH = 8
_PADDING = 1


def _table(rows: Sequence[Sequence[str]]) -> bytes:
    """Go's tabwriter over ``",\\t"``-joined cells: every cell but a line's last is aligned."""
    widths: dict[int, int] = {}
    lines = [[f"{cell}," for cell in row[:-1]] + [row[-1]] for row in rows]
    for cells in lines:
        for j, cell in enumerate(cells[:-1]):
            widths[j] = max(widths.get(j, 0), len(cell))
    out: list[str] = []
    for cells in lines:
        aligned = [
            cell.ljust(max(widths[j] + _PADDING, _MIN_WIDTH)) for j, cell in enumerate(cells[:-1])
        ]
        out.append("".join(aligned) + cells[-1] + "\n")
    return "".join(out).encode()


def dump_priority_levels(levels: Iterable[LevelState]) -> bytes:
    rows: list[list[str]] = [
        [
            "PriorityLevelName",
            "ActiveQueues",
            "IsIdle",
            "IsQuiescing",
            "WaitingRequests",
            "ExecutingRequests",
            "DispatchedRequests",
            "RejectedRequests",
            "TimedoutRequests",
            "CancelledRequests",
        ]
    ]
    for level in levels:
        idle = level.executing == 0 and level.waiting == 0
        rows.append(
            [
                level.spec.name,
                str(level.active_queues),
                _go_bool(idle),
                "false",
                str(level.waiting),
                str(level.executing),
                str(level.dispatched),
                str(level.rejected),
                str(level.timed_out),
                str(level.cancelled),
            ]
        )
    return _table(rows)


def dump_queues(levels: Iterable[LevelState]) -> bytes:
    rows: list[list[str]] = [
        [
            "PriorityLevelName",
            "Index",
            "PendingRequests",
            "ExecutingRequests",
            "SeatsInUse",
            "NextDispatchR",
            "InitialSeatsSum",
            "MaxSeatsSum",
            "TotalWorkSum",
        ]
    ]
    for level in levels:
        for index, queue in enumerate(level.queues):
            running = level.queue_executing[index]
            pending = str(len(queue))
            rows.append(
                [
                    level.spec.name,
                    str(index),
                    pending,
                    str(running),
                    str(running),
                    _ZERO_SEAT_SECONDS,
                    pending,
                    pending,
                    _ZERO_SEAT_SECONDS,
                ]
            )
    return _table(rows)


_REQUEST_COLUMNS = [
    "PriorityLevelName",
    "FlowSchemaName",
    "QueueIndex",
    "RequestIndexInQueue",
    "FlowDistingsher",  # sic, upstream's spelling
    "ArriveTime",
    "InitialSeats",
    "FinalSeats",
    "AdditionalLatency",
]
_DETAIL_COLUMNS = [
    "UserName",
    "Verb",
    "APIPath",
    "Namespace",
    "Name",
    "APIVersion",
    "Resource",
    "SubResource",
]


def dump_requests(levels: Iterable[LevelState], details: bool) -> bytes:
    """One row per waiting request (upstream's queues list only those)."""
    rows = [_REQUEST_COLUMNS + (_DETAIL_COLUMNS if details else [])]
    for level in levels:
        for index, queue in enumerate(level.queues):
            for position, waiter in enumerate(queue):
                rows.append(_request_row(level, index, position, waiter, details))
    return _table(rows)


def _request_row(
    level: LevelState, index: int, position: int, waiter: Waiter, details: bool
) -> list[str]:
    row = [
        level.spec.name,
        waiter.stats.schema,
        str(index),
        str(position),
        waiter.distinguisher,
        _rfc3339_nano(waiter.arrived),
        "1",
        "0",
        "0s",
    ]
    if details:
        info = waiter.info
        # schema.GroupVersion's String(): "v1" for the core group.
        version = f"{info.api_group}/{info.api_version}" if info.api_group else info.api_version
        row += [
            waiter.user,
            info.verb,
            info.path,
            info.namespace,
            info.name,
            version,
            info.resource,
            info.subresource,
        ]
    return row


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _rfc3339_nano(seconds: float) -> str:
    """Go's time.RFC3339Nano in UTC: fraction without trailing zeros."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


# ----- metrics ----------------------------------------------------------------------

_HELP = {
    "apiserver_flowcontrol_current_executing_requests": (
        "gauge",
        "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage"
        " in the API Priority and Fairness subsystem",
    ),
    "apiserver_flowcontrol_current_executing_seats": (
        "gauge",
        "Concurrency (number of seats) occupied by the currently executing (initial stage for a"
        " WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem",
    ),
    "apiserver_flowcontrol_current_inqueue_requests": (
        "gauge",
        "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
    ),
    "apiserver_flowcontrol_dispatched_requests_total": (
        "counter",
        "Number of requests executed by API Priority and Fairness subsystem",
    ),
    "apiserver_flowcontrol_nominal_limit_seats": (
        "gauge",
        "Nominal number of execution seats configured for each priority level",
    ),
    "apiserver_flowcontrol_rejected_requests_total": (
        "counter",
        "Number of requests rejected by API Priority and Fairness subsystem",
    ),
}


def render_metrics(flows: Iterable[FlowStats], levels: Iterable[LevelState]) -> bytes:
    """The series, labels sorted by name as Prometheus' Go client writes them."""
    flows = sorted(flows, key=lambda f: (f.level, f.schema))
    samples: dict[str, list[str]] = {name: [] for name in _HELP}
    for flow in flows:
        labels = f'flow_schema="{flow.schema}",priority_level="{flow.level}"'
        samples["apiserver_flowcontrol_current_executing_requests"].append(
            f"{{{labels}}} {flow.executing}"
        )
        samples["apiserver_flowcontrol_current_executing_seats"].append(
            f"{{{labels}}} {flow.executing}"
        )
        samples["apiserver_flowcontrol_current_inqueue_requests"].append(
            f"{{{labels}}} {flow.waiting}"
        )
        samples["apiserver_flowcontrol_dispatched_requests_total"].append(
            f"{{{labels}}} {flow.dispatched}"
        )
        for reason, count in sorted(flow.rejected.items()):
            samples["apiserver_flowcontrol_rejected_requests_total"].append(
                f'{{{labels},reason="{reason}"}} {count}'
            )
    for level in sorted(levels, key=lambda state: state.spec.name):
        samples["apiserver_flowcontrol_nominal_limit_seats"].append(
            f'{{priority_level="{level.spec.name}"}} {level.spec.limit}'
        )
    out: list[str] = []
    for name, (kind, text) in _HELP.items():
        if not samples[name]:
            continue
        out.append(f"# HELP {name} [BETA] {text}\n# TYPE {name} {kind}\n")
        out.extend(f"{name}{sample}\n" for sample in samples[name])
    return "".join(out).encode()
