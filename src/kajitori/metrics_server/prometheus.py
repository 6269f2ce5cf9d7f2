"""Reading the Prometheus text exposition format (0.0.4), as a kubelet serves it.

Only what ``/metrics/resource`` uses: ``# HELP``/``# TYPE`` comments (skipped),
then one sample a line, ``name{label="value",...} value [timestamp_ms]``.
Label values may hold ``\\\\``, ``\\"`` and ``\\n`` escapes.
"""

from __future__ import annotations

import dataclasses
import math


class ParseError(ValueError):
    """A line that is not a sample."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None


def parse(text: str) -> list[Sample]:
    """Every sample of ``text``, in order."""
    samples = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            samples.append(parse_line(line))
        except (ValueError, IndexError) as exc:
            raise ParseError(f"line {number}: {exc}: {line!r}") from exc
    return samples


def parse_line(line: str) -> Sample:
    brace = line.find("{")
    space = line.find(" ")
    labels: dict[str, str] = {}
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        rest = _labels(line, brace + 1, labels)
    else:
        name, _, rest = line.partition(" ")
    fields = rest.split()
    if not name or not fields:
        raise ParseError("no value")
    value = _float(fields[0])
    timestamp = int(fields[1]) if len(fields) > 1 else None
    return Sample(name, labels, value, timestamp)


def _labels(line: str, pos: int, out: dict[str, str]) -> str:
    """Reads ``key="value",...}`` from ``pos``; returns what follows the brace."""
    while True:
        while line[pos] in " ,":
            pos += 1
        if line[pos] == "}":
            return line[pos + 1 :]
        equals = line.index("=", pos)
        key = line[pos:equals].strip()
        if line[equals + 1] != '"':
            raise ParseError("label value is not quoted")
        pos = equals + 2
        chars: list[str] = []
        while line[pos] != '"':
            char = line[pos]
            if char == "\\":
                pos += 1
                char = {"n": "\n"}.get(line[pos], line[pos])
            chars.append(char)
            pos += 1
        out[key] = "".join(chars)
        pos += 1


def _float(text: str) -> float:
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    return special[text] if text in special else float(text)
