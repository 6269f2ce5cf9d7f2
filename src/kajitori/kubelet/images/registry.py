"""An async registry v2 client (pull only), on httpx.

What a kubelet needs to pull what a pod names (distribution's HTTP API and
containerd's ``remotes/docker`` resolver and fetcher):

1. ``GET /v2/<repo>/manifests/<tag|digest>`` with an ``Accept`` of OCI and
   Docker manifests and indexes; the body's sha256 must equal the
   ``Docker-Content-Digest`` header and, when asked by digest, that digest.
2. A 401 carries ``WWW-Authenticate``. ``Basic``: resend with the credentials.
   ``Bearer realm=..,service=..,scope=..``: ``GET realm?service=..&scope=..``
   (with Basic credentials when there are some, anonymous otherwise) for a
   ``token``/``access_token``, then resend with ``Authorization: Bearer``.
3. An index or manifest list: pick this node's platform, fetch that manifest.
4. ``GET /v2/<repo>/blobs/<digest>`` for the config and each layer, streamed
   into a sink that verifies digest and size before anything is kept.
5. Redirects (blob stores behind S3 or a CDN answer 307) are followed here, and
   ``Authorization`` is dropped when the redirect leaves the registry's origin.

TLS trust per registry is containerd's hosts directory (decision 0032): with
``hosts_dir``, the ``*.crt`` files of ``<hosts_dir>/<host[:port]>/`` (else of
``<hosts_dir>/_default/``) are trusted for that registry on top of the
system's roots, read again whenever they change.

Errors are ``RegistryError`` whose text is what containerd puts after
``failed to resolve reference "<ref>": `` (resolution) or ``failed to copy:
`` (blobs); the puller adds containerd's ``failed to pull and unpack image``
prefix, so kubelet's events read as upstream's.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import re
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Any, Protocol

import httpx

from kajitori.kubelet.images import manifest
from kajitori.kubelet.images import reference as references
from kajitori.kubelet.images.credentials import AuthConfig

USER_AGENT = "kajitori-kubelet/1.37"
PULL_ACCESS_DENIED = "pull access denied, repository does not exist or may require authorization"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_TOKEN = re.compile(r"[^\s,=\"]+")


class RegistryError(Exception):
    """A pull that failed talking to a registry; ``str()`` is containerd's wording."""

    def __init__(self, message: str, *, stage: str = "resolve") -> None:
        super().__init__(message)
        self.stage = stage  # "resolve": finding the manifest; "fetch": copying blobs


class BlobSink(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """The manifest a reference resolves to on this node's platform."""

    reference: references.Reference
    manifest_digest: str
    media_type: str
    manifest: dict[str, Any]
    manifest_bytes: bytes
    # When the reference named an index: its digest and body, kept with the image.
    index_digest: str | None = None
    index_bytes: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """``WWW-Authenticate`` → challenges, e.g. ``Bearer realm="..",scope="repo:a:pull,push"``.

    A token followed by ``=`` is a parameter of the current challenge; any
    other token starts a new challenge. Quoted values may hold commas.
    """
    challenges: list[Challenge] = []
    pos, end = 0, len(header)
    while pos < end:
        while pos < end and header[pos] in " \t,":
            pos += 1
        match = _TOKEN.match(header, pos)
        if match is None:
            break
        token, pos = match.group(0), match.end()
        while pos < end and header[pos] in " \t":
            pos += 1
        if pos < end and header[pos] == "=" and challenges:
            value, pos = _challenge_value(header, pos + 1)
            challenges[-1].params[token.lower()] = value
        elif pos < end and header[pos] == "=":
            pos = _challenge_value(header, pos + 1)[1]  # a parameter before any scheme
        else:
            challenges.append(Challenge(token.lower(), {}))
    return challenges


def _challenge_value(header: str, pos: int) -> tuple[str, int]:
    while pos < len(header) and header[pos] in " \t":
        pos += 1
    if pos < len(header) and header[pos] == '"':
        value: list[str] = []
        pos += 1
        while pos < len(header) and header[pos] != '"':
            if header[pos] == "\\" and pos + 1 < len(header):
                pos += 1
            value.append(header[pos])
            pos += 1
        return "".join(value), pos + 1
    match = _TOKEN.match(header, pos)
    return (match.group(0), match.end()) if match else ("", pos)


class RegistryClient:
    """Shared HTTP connections to registries, and the node's platform and TLS trust.

    ``verify`` is httpx's (an ``ssl.SSLContext``, a CA bundle path, or a bool);
    ``plain_http`` lists ``host:port``s spoken to over HTTP (containerd's
    ``insecure`` hosts); ``hosts_dir`` is containerd's ``config_path``
    (``certs.d``) of per-registry CAs; ``transport`` is for tests.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        platform: manifest.Platform | None = None,
        plain_http: Collection[str] = (),
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        hosts_dir: Path | None = None,
    ) -> None:
        self.platform = platform or manifest.Platform()
        self.plain_http = frozenset(plain_http)
        self.hosts_dir = hosts_dir
        if isinstance(verify, str):  # a CA bundle; httpx wants an SSLContext for it
            verify = ssl.create_default_context(cafile=verify)
        self._verify = verify
        self._timeout = timeout
        self._transport = transport
        self._http = self._new_http(verify)
        # host -> (the CA files it was built from, with their mtimes; its client)
        self._host_http: dict[str, tuple[tuple[tuple[str, int], ...], httpx.AsyncClient]] = {}
        self._retired: list[httpx.AsyncClient] = []

    def _new_http(self, verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=verify,
            timeout=self._timeout,
            follow_redirects=False,
            transport=self._transport,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a kubelet's pulls do not go through the user's proxy settings
        )

    async def aclose(self) -> None:
        clients = [self._http, *(c for _, c in self._host_http.values()), *self._retired]
        self._host_http.clear()
        self._retired.clear()
        for client in clients:
            await client.aclose()

    def _http_for(self, host: str) -> httpx.AsyncClient:
        """The client for ``host``: the shared one, or one trusting its ``certs.d`` CAs too."""
        cas = host_ca_files(self.hosts_dir, host) if self.hosts_dir is not None else []
        if not cas or self._verify is False:
            return self._http
        key = tuple((str(path), path.stat().st_mtime_ns) for path in cas)
        cached = self._host_http.get(host)
        if cached is not None and cached[0] == key:
            return cached[1]
        # As containerd: the system's roots plus the host's own CAs.
        context = ssl.create_default_context()
        for path in cas:
            try:
                context.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError(f"failed to load CA file {path}: {exc}") from exc
        client = self._new_http(context)
        if cached is not None:
            self._retired.append(cached[1])  # requests in flight may still use it
        self._host_http[host] = (key, client)
        return client

    def session(
        self, ref: references.Reference, auth: AuthConfig | None = None
    ) -> RepositorySession:
        """A session for one repository with one set of credentials (or anonymous)."""
        host = references.api_host(ref.domain)
        scheme = "http" if host in self.plain_http else "https"
        http = self._http_for(ref.domain) if scheme == "https" else self._http
        return RepositorySession(http, ref, f"{scheme}://{host}", auth, self.platform)


def host_ca_files(hosts_dir: Path, host: str) -> list[Path]:
    """The ``*.crt`` files of ``hosts_dir/<host>/``, else of ``hosts_dir/_default/``.

    ``host`` is the reference's registry (``docker.io``, ``localhost:5000``), the
    directory names containerd's ``certs.d`` and Docker's ``/etc/docker/certs.d`` use.
    """
    for name in (host, "_default"):
        directory = hosts_dir / name
        if directory.is_dir():
            return sorted(p for p in directory.glob("*.crt") if p.is_file())
    return []


class RepositorySession:
    """Requests to one repository; remembers the Authorization it negotiated."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        ref: references.Reference,
        base_url: str,
        auth: AuthConfig | None,
        platform: manifest.Platform,
    ) -> None:
        self._http = http
        self.ref = ref
        self._base = base_url
        self._auth = auth if auth and (auth.username or auth.password) else None
        self._platform = platform
        self._authorization: str | None = None
        self._scheme = ""

    async def resolve(self) -> Resolved:
        """The manifest ``ref`` names for this platform (raises ``RegistryError``)."""
        media_type, digest, body = await self._fetch_manifest(self.ref.object)
        document = self._parse(body, media_type)
        if media_type not in manifest.INDEX_TYPES:
            return Resolved(self.ref, digest, media_type, document, body)
        index_digest, index_body = digest, body
        try:
            chosen = manifest.select_platform(document, self._platform)
        except manifest.ManifestError as exc:
            raise RegistryError(str(exc)) from exc
        media_type, digest, body = await self._fetch_manifest(chosen["digest"])
        document = self._parse(body, media_type)
        if media_type in manifest.INDEX_TYPES:
            raise RegistryError("nested image indexes are not supported")
        return Resolved(self.ref, digest, media_type, document, body, index_digest, index_body)

    async def fetch_blob(
        self,
        descriptor: dict[str, Any],
        open_sink: Callable[[], contextlib.AbstractContextManager[BlobSink]],
    ) -> int:
        """Stream the blob ``descriptor`` names into ``open_sink()``; returns its size.

        The sink verifies digest and size when it closes; HTTP failures raise
        ``RegistryError`` with containerd's ``httpReadSeeker`` wording.
        """
        digest = manifest.check_digest(descriptor["digest"])
        url = f"{self._base}/v2/{self.ref.path}/blobs/{digest}"
        total = 0
        async with self._get(url) as response:
            if response.status_code == 404:
                raise RegistryError(
                    f"httpReadSeeker: failed open: content at {url} not found: not found",
                    stage="fetch",
                )
            if response.status_code != 200:
                raise RegistryError(
                    f"httpReadSeeker: failed open: unexpected status code {url}: "
                    f"{_status(response)}",
                    stage="fetch",
                )
            try:
                with open_sink() as sink:
                    async for chunk in response.aiter_bytes(1 << 20):
                        sink.write(chunk)
                        total += len(chunk)
            except httpx.HTTPError as exc:
                raise RegistryError(
                    f"failed to read {url}: {_describe(exc)}", stage="fetch"
                ) from exc
        return total

    # Manifests --------------------------------------------------------------

    async def _fetch_manifest(self, obj: str) -> tuple[str, str, bytes]:
        url = f"{self._base}/v2/{self.ref.path}/manifests/{obj}"
        async with self._get(url, accept=manifest.ACCEPT) as response:
            if response.status_code == 404:
                raise RegistryError(f"{self.ref}: not found")
            if response.status_code != 200:
                raise RegistryError(
                    f"unexpected status from GET request to {url}: {_status(response)}"
                )
            body = await _read_limited(response, manifest.MAX_MANIFEST_SIZE)
            header_type = response.headers.get("Content-Type", "")
            header_digest = response.headers.get("Docker-Content-Digest", "")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if obj.startswith("sha256:") and digest != obj:
            raise RegistryError(f"manifest digest mismatch: got {digest}, expected {obj}")
        if header_digest and header_digest != digest:
            raise RegistryError(
                f"manifest digest mismatch: Docker-Content-Digest {header_digest}, "
                f"content is {digest}"
            )
        return manifest.media_type_of(_json_or_empty(body), header_type), digest, body

    @staticmethod
    def _parse(body: bytes, media_type: str) -> dict[str, Any]:
        try:
            return manifest.parse_document(body, media_type)[1]
        except manifest.ManifestError as exc:
            raise RegistryError(str(exc)) from exc

    # HTTP, authentication and redirects ------------------------------------

    @contextlib.asynccontextmanager
    async def _get(self, url: str, *, accept: str | None = None) -> AsyncIterator[httpx.Response]:
        """GET ``url`` (streamed), answering auth challenges; 401/403 raise here."""
        for attempt in range(3):
            response = await self._send(url, accept)
            if response.status_code not in (401, 403):
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            await response.aread()
            await response.aclose()
            if response.status_code == 403 or attempt == 2:
                raise RegistryError(self._denied(url, response))
            await self._authorize(url, response)
        raise AssertionError("unreachable")

    async def _send(self, url: str, accept: str | None) -> httpx.Response:
        origin = _origin(url)
        headers = {"Accept": accept} if accept else {}
        for _ in range(_MAX_REDIRECTS + 1):
            if self._authorization and _origin(url) == origin:
                headers["Authorization"] = self._authorization
            else:
                headers.pop("Authorization", None)  # never hand credentials to another host
            request = self._http.build_request("GET", url, headers=headers)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise RegistryError(f'failed to do request: Get "{url}": {_describe(exc)}') from exc
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            await response.aclose()
            url = urllib.parse.urljoin(url, location)
        raise RegistryError(f"stopped after {_MAX_REDIRECTS} redirects")

    async def _authorize(self, url: str, response: httpx.Response) -> None:
        """Act on a 401's challenge, or raise the error containerd would."""
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            expired = bearer.params.get("error") == "invalid_token"
            if self._scheme == "bearer" and not expired:  # a token we were given did not do
                raise RegistryError(self._denied(url, response, bearer))
            self._authorization = "Bearer " + await self._fetch_token(bearer)
            self._scheme = "bearer"
        elif basic is not None:
            if self._auth is None:
                raise RegistryError(
                    f"{PULL_ACCESS_DENIED}: authorization failed: no basic auth credentials"
                )
            if self._scheme == "basic":
                raise RegistryError(
                    f"unexpected status from GET request to {url}: {_status(response)}"
                )
            self._authorization = "Basic " + _basic(self._auth)
            self._scheme = "basic"
        else:
            raise RegistryError("failed to find supported auth scheme: not implemented")

    async def _fetch_token(self, challenge: Challenge) -> str:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"failed to authorize: invalid token realm {realm!r}")
        query = {"scope": f"repository:{self.ref.path}:pull"}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(sorted(query.items()))
        headers = {"Authorization": "Basic " + _basic(self._auth)} if self._auth else {}
        what = "oauth token" if self._auth else "anonymous token"
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f'failed to authorize: failed to fetch {what}: Get "{url}": {_describe(exc)}'
            ) from exc
        if response.status_code != 200:
            raise RegistryError(
                f"failed to authorize: failed to fetch {what}: unexpected status from GET "
                f"request to {url}: {_status(response)}"
            )
        try:
            document = response.json()
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"failed to authorize: failed to fetch {what}: no token in answer")
        return token

    def _denied(
        self, url: str, response: httpx.Response, challenge: Challenge | None = None
    ) -> str:
        """containerd's text for a registry that still refuses once we authenticated."""
        if response.status_code == 403:
            return f"unexpected status from GET request to {url}: {_status(response)}"
        server_error = challenge.params.get("error", "") if challenge else ""
        if server_error:
            return f"{PULL_ACCESS_DENIED}: server message: {server_error}: authorization failed"
        return f"{PULL_ACCESS_DENIED}: authorization failed"


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise RegistryError(f"manifest larger than {limit} bytes")
            chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise RegistryError(f"failed to read {response.url}: {_describe(exc)}") from exc
    return b"".join(chunks)


def _json_or_empty(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _basic(auth: AuthConfig | None) -> str:
    assert auth is not None
    return base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".rstrip()


def _dial(exc: httpx.HTTPError) -> str:
    """Go's ``dial tcp <host>:<port>: `` prefix of a connect error (empty without a request)."""
    try:
        url = exc.request.url
    except RuntimeError:  # an error raised outside a request
        return ""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"dial tcp {host}:{port}: "


def _describe(exc: httpx.HTTPError) -> str:
    """Go's words for the usual network failures (what containerd's messages carry)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return f"{_dial(exc)}connect: connection refused"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"tls: failed to verify certificate: {cause.verify_message}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return "i/o timeout"
    return str(exc) or type(exc).__name__
