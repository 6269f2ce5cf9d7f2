"""Static bearer tokens from ``--token-auth-file`` (upstream's tokenfile authenticator).

The file is CSV, one token per row: ``token,user,uid[,"group1,group2"]``;
leading spaces in fields are ignored, blank lines skipped. A row with fewer
than three columns makes the file unusable (upstream refuses to start). A
token seen twice keeps its last row, as upstream (which only warns).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from kajitori.registry.generic.request import UserInfo

log = logging.getLogger(__name__)


class TokenFile:
    """Tokens mapped to users; ``authenticate_token`` answers only for tokens it holds."""

    def __init__(self, tokens: Mapping[str, UserInfo]) -> None:
        self.tokens = dict(tokens)

    @classmethod
    def from_path(cls, path: Path | str) -> TokenFile:
        return cls(parse(Path(path).read_text(), source=str(path)))

    async def authenticate_token(
        self, token: str, *, audiences: Sequence[str] = ()
    ) -> UserInfo | None:
        return self.tokens.get(token)


def parse(text: str, *, source: str = "token file") -> dict[str, UserInfo]:
    """Rows of ``token,user,uid[,groups]``; raises ValueError for a short row."""
    tokens: dict[str, UserInfo] = {}
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    for line, record in enumerate(reader, start=1):
        if not record:
            continue
        if len(record) < 3:
            raise ValueError(
                f"token file '{source}' must have at least 3 columns "
                f"(token, user name, user uid), found {len(record)}"
            )
        token, name, uid = record[0], record[1], record[2]
        if token in tokens:
            log.warning("duplicate token has been found in token file '%s', line %d", source, line)
        groups = (
            tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
        )
        tokens[token] = UserInfo(name, groups, uid=uid)
    return tokens
