"""A real registry for tests: Debian's ``docker-registry`` on loopback, TLS and auth.

``Registry.start(directory, auth="htpasswd")`` runs CNCF distribution 2.8 on
a free 127.0.0.1 port with a fresh CA and a serving certificate for
``localhost``/``127.0.0.1``, and one user in a bcrypt htpasswd file (made with
``htpasswd -B`` from apache2-utils: distribution ignores other hashes).
``auth="token"`` instead starts ``TokenServer``, the Bearer-token flow of
Docker Hub and GHCR: an HTTPS ``/token`` endpoint that checks Basic
credentials and signs RS256 JWTs with an ``x5c`` header chaining to the
registry's ``rootcertbundle``, ``aud`` the service as a string (what 2.8
accepts), ``access`` the granted pull/push actions; anonymous callers get a
token that grants nothing. ``auth=None`` is an open registry.

``push(repository, tag, image)`` uploads through the registry API
(monolithic blob uploads, then the manifest) so tests need no skopeo.
``stop()`` ends the processes it started and removes nothing it did not make.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Literal, Self

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import oid

from kajitori.auth import pki
from kajitori.testing import images

BINARY = "docker-registry"
USERNAME = "kajitori"
SERVICE = "kajitori-registry"
ISSUER = "kajitori-token-issuer"
_START_TIMEOUT = 15.0


def available() -> str | None:
    """Why the registry fixture cannot run here, or None when it can."""
    if shutil.which(BINARY) is None:
        return "Debian's docker-registry is not installed (scripts/install-test-deps)"
    if shutil.which("htpasswd") is None:
        return "htpasswd (apache2-utils) is not installed (scripts/install-test-deps)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Certificates:
    """A CA and a serving certificate for localhost and 127.0.0.1, written to ``directory``."""

    directory: Path

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ca = pki.generate_ca("kajitori test registry CA")
        serving = pki.issue_serving_cert(
            ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], common_name="localhost"
        )
        self.ca_file.write_bytes(ca.cert_pem)
        self.cert_file.write_bytes(serving.cert_pem)
        self.key_file.write_bytes(serving.key_pem)
        self.key_file.chmod(0o600)

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert_file(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


class TokenServer:
    """The Bearer token endpoint, an HTTPS server in a thread of the test process."""

    def __init__(self, directory: Path, certs: Certificates, password: str) -> None:
        self.port = free_port()
        self.realm = f"https://localhost:{self.port}/token"
        self.requests: list[dict[str, str]] = []
        self._password = password
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cert = _self_signed(self._key, "kajitori token signer")
        self.bundle = directory / "token-signer.crt"
        self.bundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.cert_file, certs.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, user: str | None, scopes: list[str], service: str) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if user is not None and kind == "repository":
                granted = [a for a in actions.split(",") if a in ("pull", "push")]
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": base64.urlsafe_b64encode(os.urandom(12)).decode(),
            "access": access,
        }
        x5c = [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": x5c})

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                del args  # quiet: tests read ``requests`` instead

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                server.requests.append(
                    {"path": url.path, "authorization": self.headers.get("Authorization", "")}
                )
                user = server._check_basic(self.headers.get("Authorization", ""))
                if url.path != "/token" or user is False:
                    self.send_response(401 if url.path == "/token" else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = server.issue(
                    user or None, query.get("scope", []), query.get("service", [""])[0]
                )
                body = f'{{"token": "{token}", "access_token": "{token}", "expires_in": 300}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        return Handler

    def _check_basic(self, header: str) -> str | Literal[False]:
        """The user for valid Basic credentials, "" for none, False for wrong ones."""
        if not header.startswith("Basic "):
            return ""
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if (user, password) == (USERNAME, self._password) else False


class Registry:
    """A running docker-registry; use ``Registry.start(...)`` and ``stop()``."""

    def __init__(self, directory: Path, *, auth: str | None = "htpasswd") -> None:
        self.directory = directory
        self.auth = auth
        self.port = free_port()
        self.host = f"localhost:{self.port}"
        self.username = USERNAME
        self.password = base64.urlsafe_b64encode(os.urandom(12)).decode()
        self.certs = Certificates(directory / "certs")
        self.token_server: TokenServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "registry.log"

    @classmethod
    def start(cls, directory: Path, *, auth: str | None = "htpasswd") -> Self:
        directory.mkdir(parents=True, exist_ok=True)
        registry = cls(directory, auth=auth)
        try:
            registry._start()
        except BaseException:
            registry.stop()
            raise
        return registry

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        config = self.directory / "config.yml"
        config.write_text(self._config())
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _START_TIMEOUT
        with httpx.Client(verify=self.certs.client_context(), trust_env=False) as client:
            while True:
                try:
                    client.get(f"https://{self.host}/v2/", timeout=1.0)
                    return
                except httpx.HTTPError:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"docker-registry did not start: {self._log.read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.05)

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  tls:",
            f"    certificate: {self.certs.cert_file}",
            f"    key: {self.certs.key_file}",
        ]
        if self.auth == "htpasswd":
            htpasswd = self.directory / "htpasswd"
            subprocess.run(
                ["htpasswd", "-Bbc", str(htpasswd), self.username, self.password],
                check=True,
                capture_output=True,
            )
            lines += ["auth:", "  htpasswd:", "    realm: kajitori", f"    path: {htpasswd}"]
        elif self.auth == "token":
            self.token_server = TokenServer(self.directory, self.certs, self.password)
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token_server.realm}",
                f"    service: {SERVICE}",
                f"    issuer: {ISSUER}",
                f"    rootcertbundle: {self.token_server.bundle}",
            ]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None

    # Pushing ----------------------------------------------------------------

    def docker_config(self) -> dict[str, Any]:
        """A ``.dockerconfigjson`` document for this registry's user."""
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {
            "auths": {
                self.host: {"username": self.username, "password": self.password, "auth": auth}
            }
        }

    def pull_secret(self, name: str = "regcred", namespace: str = "default") -> dict[str, Any]:
        """A ``kubernetes.io/dockerconfigjson`` Secret object as the API returns it."""
        encoded = base64.b64encode(json.dumps(self.docker_config()).encode()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": namespace},
            "data": {".dockerconfigjson": encoded},
        }

    def push(self, repository: str, tag: str, item: images.Image | images.Index) -> str:
        """Upload ``item`` as ``repository:tag``; returns its digest."""
        with httpx.Client(
            base_url=f"https://{self.host}",
            verify=self.certs.client_context(),
            headers={"Authorization": self._push_authorization(repository)},
            trust_env=False,
        ) as client:
            for image in item.images if isinstance(item, images.Index) else (item,):
                self._push_image(client, repository, image)
            if isinstance(item, images.Index):
                self._put_manifest(client, repository, tag, item.index_bytes, item.media_type)
            else:
                self._put_manifest(client, repository, tag, item.manifest_bytes, item.media_type)
        return item.digest

    def _push_image(self, client: httpx.Client, repository: str, image: images.Image) -> None:
        for digest, data in image.blobs.items():
            started = client.post(f"/v2/{repository}/blobs/uploads/")
            started.raise_for_status()
            location = started.headers["Location"]
            separator = "&" if "?" in location else "?"
            done = client.put(
                f"{location}{separator}digest={digest}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
        self._put_manifest(client, repository, image.digest, image.manifest_bytes, image.media_type)

    @staticmethod
    def _put_manifest(
        client: httpx.Client, repository: str, reference: str, body: bytes, media_type: str
    ) -> None:
        response = client.put(
            f"/v2/{repository}/manifests/{reference}",
            content=body,
            headers={"Content-Type": media_type},
        )
        response.raise_for_status()

    def _push_authorization(self, repository: str) -> str:
        if self.token_server is not None:
            token = self.token_server.issue(
                self.username, [f"repository:{repository}:pull,push"], SERVICE
            )
            return f"Bearer {token}"
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
