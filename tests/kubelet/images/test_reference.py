"""Image references normalise as distribution's ParseNormalizedNamed does."""

from __future__ import annotations

import pytest

from kajitori.kubelet.images import reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        pytest.param("busybox", "docker.io/library/busybox:latest", id="official-image"),
        pytest.param("busybox:1.36", "docker.io/library/busybox:1.36", id="tag"),
        pytest.param("library/busybox", "docker.io/library/busybox:latest", id="library"),
        pytest.param("user/app:v1", "docker.io/user/app:v1", id="user-repository"),
        pytest.param("docker.io/busybox", "docker.io/library/busybox:latest", id="docker-io"),
        pytest.param(
            "index.docker.io/library/busybox", "docker.io/library/busybox:latest", id="legacy-hub"
        ),
        pytest.param("localhost/app", "localhost/app:latest", id="localhost"),
        pytest.param(
            "localhost:5000/demo/busybox:1.0", "localhost:5000/demo/busybox:1.0", id="port"
        ),
        pytest.param("quay.io/a/b/c:d", "quay.io/a/b/c:d", id="nested-path"),
        pytest.param("[::1]:5000/app:1", "[::1]:5000/app:1", id="ipv6"),
        pytest.param(f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", id="digest"),
        pytest.param(
            f"busybox:1.36@{DIGEST}",
            f"docker.io/library/busybox:1.36@{DIGEST}",
            id="tag-and-digest",
        ),
        pytest.param("Example.com/app", "Example.com/app:latest", id="upper-case-domain"),
        pytest.param("a__b-c/e.f", "docker.io/a__b-c/e.f:latest", id="separators"),
        pytest.param("a.b/c", "a.b/c:latest", id="dot-means-domain"),
    ],
)
def test_references_normalise_as_distribution_does(text: str, normalised: str) -> None:
    """Short names gain docker.io, library/ and :latest; full ones are kept."""
    assert reference.normalize(text) == normalised


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "invalid reference format", id="empty"),
        pytest.param("Busybox", "repository name (library/Busybox) must be lowercase", id="upper"),
        pytest.param("busybox:", "invalid reference format", id="empty-tag"),
        pytest.param("busybox:-1", "invalid reference format", id="tag-start"),
        pytest.param("busybox@sha256:abc", "invalid reference format", id="short-digest"),
        pytest.param("bus//ybox", "invalid reference format", id="empty-component"),
        pytest.param("a" * 64, "cannot specify 64-byte hexadecimal strings", id="image-id"),
        pytest.param("x/" + "a" * 260, "must not be more than 255 characters", id="too-long"),
        pytest.param("busybox:" + "a" * 129, "invalid reference format", id="tag-too-long"),
    ],
)
def test_invalid_references_are_refused_with_distributions_message(text: str, message: str) -> None:
    """The error text is what kubelet embeds in InvalidImageName."""
    with pytest.raises(
        reference.InvalidReference, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        reference.parse(text)


def test_a_digest_is_what_the_registry_is_asked_for() -> None:
    """With a tag and a digest, the digest wins; repo digests drop the tag."""
    ref = reference.parse(f"localhost:5000/app:1@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag, ref.object) == ("localhost:5000", "app", "1", DIGEST)
    assert ref.with_digest(DIGEST) == f"localhost:5000/app@{DIGEST}"
    assert reference.parse("app:2").object == "2"


def test_docker_hub_is_served_by_registry_1() -> None:
    """docker.io names the Hub; its API lives on registry-1.docker.io."""
    assert reference.api_host("docker.io") == "registry-1.docker.io"
    assert reference.api_host("localhost:5000") == "localhost:5000"
