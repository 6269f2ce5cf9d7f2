"""Image references: parse and normalise ``busybox`` to ``docker.io/library/busybox:latest``.

The grammar is distribution's ``reference`` package (the one kubelet and
containerd both use through ``ParseNormalizedNamed``):

- ``name`` is ``[domain/]path``; the first component is a domain only when it
  contains ``.`` or ``:`` or is ``localhost`` (or has upper case letters, which
  a path may not have); otherwise the domain is ``docker.io`` and a one-component
  path gets ``library/`` in front.
- ``index.docker.io`` is rewritten to ``docker.io``.
- ``:tag`` (``[\\w][\\w.-]{0,127}``) and ``@digest`` (``algo:hex``) are optional;
  when both are absent the tag is ``latest``. A digest wins for pulling.
- Path components are lower case; the whole name is at most 255 characters.

Accepted inputs: ``busybox``, ``busybox:1.36``, ``library/busybox``,
``localhost:5000/demo/busybox:1.0``, ``[::1]:5000/x``,
``busybox@sha256:<64 hex>``, ``busybox:1.36@sha256:<64 hex>``.
Errors carry distribution's texts (``invalid reference format``, ``...must be
lowercase``), which kubelet shows inside ``InvalidImageName`` messages.
"""

from __future__ import annotations

import dataclasses
import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ANCHORED_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")


class InvalidReference(ValueError):
    """A string that is not an image reference; the text is distribution's."""


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """A normalised image reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``docker.io/library/busybox``: the repository, with its domain."""
        return f"{self.domain}/{self.path}"

    @property
    def object(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str) -> str:
        """``name@digest``: the repo digest containerd reports as an image's id."""
        return f"{self.name}@{digest}"


def parse(text: str) -> Reference:
    """Parse and normalise ``text``; a reference with neither tag nor digest gets ``latest``."""
    if _ANCHORED_IDENTIFIER.match(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote_name}) must be lowercase"
        )
    match = _REFERENCE.match(f"{domain}/{remainder}")
    if match is None:
        raise InvalidReference("invalid reference format")
    if len(match.group("name")) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    path = match.group("name")[len(domain) + 1 :]
    tag, digest = match.group("tag"), match.group("digest")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def normalize(text: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest`` (raises ``InvalidReference``)."""
    return str(parse(text))


def _split_domain(text: str) -> tuple[str, str]:
    """Upstream's splitDockerDomain: which part of ``text`` names the registry."""
    first, sep, rest = text.partition("/")
    if not sep or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def api_host(domain: str) -> str:
    """The host that serves the v2 API for ``domain`` (Docker Hub's is not docker.io)."""
    return "registry-1.docker.io" if domain == DEFAULT_DOMAIN else domain
