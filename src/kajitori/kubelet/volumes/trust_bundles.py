"""The ``clusterTrustBundle`` projected volume source (upstream: pkg/kubelet/clustertrustbundle
and the ClusterTrustBundle case of pkg/volume/projected).

Owns what one such source puts in its file: the trust anchors of one
ClusterTrustBundle by ``name``, or of every bundle whose ``spec.signerName``
is ``signerName`` and whose labels match ``labelSelector`` (a missing
selector matches nothing, an empty one everything, as upstream's
``LabelSelectorAsSelector``). The certificates of all chosen bundles are
parsed out of their PEM, de-duplicated and written back as one PEM list in
an order that is stable for this kubelet but differs between kubelets
(upstream shuffles with a seed chosen when the kubelet starts), so no
consumer comes to depend on it.

With ``optional: true`` a missing bundle (or a selector matching none) gives
an empty file; otherwise the volume is not set up, with upstream's error.
Bundles are read through the ``ObjectSource``, as the node (the Node
authorizer lets a kubelet read them).
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import ssl
from typing import Any

from kajitori.kubelet.volumes.errors import VolumeError
from kajitori.kubelet.volumes.source import ObjectSource
from kajitori.machinery import labels

Object = dict[str, Any]

# One PEM block of any type, as Go's pem.Decode finds them (headers are not expected here).
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^-\r\n]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


def _mapping(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def pem_blocks(text: str) -> list[bytes]:
    """The DER bytes of every PEM block in ``text``, in order; undecodable blocks end the walk."""
    found: list[bytes] = []
    for match in _PEM_BLOCK.finditer(text.encode()):
        try:
            found.append(base64.b64decode(b"".join(match.group(2).split()), validate=True))
        except (binascii.Error, ValueError):
            break  # Go's pem.Decode stops at the first block it cannot read
    return found


def normalize(bundles: list[Object], seed: int) -> bytes:
    """The bundles' distinct certificates as one PEM list, shuffled by ``seed``."""
    anchors: set[bytes] = set()
    for bundle in bundles:
        anchors.update(pem_blocks(str(_mapping(bundle.get("spec")).get("trustBundle") or "")))
    ordered = sorted(anchors)
    random.Random(seed).shuffle(ordered)
    return b"".join(ssl.DER_cert_to_PEM_cert(der).encode() for der in ordered)


async def trust_anchors(source: ObjectSource, volume: str, projection: Object, seed: int) -> bytes:
    """The file content of one ``clusterTrustBundle`` projection; raises VolumeError."""
    optional = projection.get("optional") is True
    name = projection.get("name")
    signer = projection.get("signerName")
    if name:
        found = await source.get_cluster_trust_bundle(str(name))
        if found is None:
            if optional:
                return b""
            raise VolumeError(
                volume,
                "while getting ClusterTrustBundle: clustertrustbundle.certificates.k8s.io "
                f'"{name}" not found',
            )
        return normalize([found], seed)
    if signer:
        try:
            selector = labels.selector_from_label_selector(projection.get("labelSelector"))
        except labels.SelectorError as exc:
            raise VolumeError(volume, f"while parsing label selector: {exc}") from None
        matching = [
            bundle
            for bundle in await source.list_cluster_trust_bundles()
            if _mapping(bundle.get("spec")).get("signerName") == signer
            and selector.matches(_mapping(bundle.get("metadata")).get("labels") or {})
        ]
        if not matching:
            if optional:
                return b""
            raise VolumeError(
                volume,
                "combination of signerName and labelSelector matched zero ClusterTrustBundles",
            )
        return normalize(matching, seed)
    raise VolumeError(
        volume, "ClusterTrustBundle projection requires either name or signerName to be set"
    )
