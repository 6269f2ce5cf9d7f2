"""ClusterTrustBundles in the API server (upstream: pkg/registry/certificates/clustertrustbundle).

Owns: cluster scope; validation from ``api.certificates_v1.clustertrustbundles``
(the name tied to the signer, the PEM bundle of CA certificates, an
immutable signerName); ``spec.signerName`` as a field selector; the
``kubectl get clustertrustbundles`` columns (NAME SIGNERNAME, no AGE, as
upstream's printer). Who may name a signer at all is the
ClusterTrustBundleAttest admission plugin's check
(``admission.plugins.cluster_trust_bundle_attest``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.certificates_v1 import clustertrustbundles as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

_SPEC = "io.k8s.api.certificates.v1.ClusterTrustBundleSpec"


class ClusterTrustBundleStrategy(strategies.Strategy):
    """Create/update rules for ``certificates.k8s.io/v1 clustertrustbundles``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_cluster_trust_bundle(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_cluster_trust_bundle_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


def _signer(obj: Object) -> str:
    spec = obj.get("spec")
    return str(spec.get("signerName") or "") if isinstance(spec, dict) else ""


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("SignerName", description=printing.doc(_SPEC, "signerName")),
)


def cluster_trust_bundle_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [tables.name(obj), _signer(obj) or "<none>"]


RESOURCE = resource.ResourceInfo(
    group="certificates.k8s.io",
    version="v1",
    kind="ClusterTrustBundle",
    plural="clustertrustbundles",
    namespaced=False,
    strategy=ClusterTrustBundleStrategy(),
    selectable_fields={"spec.signerName": resource.nested_str("spec", "signerName")},
    table=tables.Table(columns=COLUMNS, row=cluster_trust_bundle_row),
)
