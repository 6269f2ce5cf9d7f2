"""Where each built-in group version sorts among APIServices (upstream's apiVersionPriorities).

Upstream keeps this table beside the aggregator because the built-in servers
do not know their own priorities; a group version missing from it gets no
APIService. CRD versions all get ``CRD`` (upstream's crdregistration controller).
"""

from __future__ import annotations

from typing import NamedTuple


class Priority(NamedTuple):
    group: int
    version: int


CRD = Priority(1000, 100)

BUILT_IN: dict[tuple[str, str], Priority] = {
    ("", "v1"): Priority(18000, 1),
    # The workload versions upstream removed in 1.16, when served (decision 0015).
    ("extensions", "v1beta1"): Priority(17900, 1),
    ("apps", "v1"): Priority(17800, 15),
    ("apps", "v1beta2"): Priority(17800, 9),
    ("apps", "v1beta1"): Priority(17800, 1),
    ("events.k8s.io", "v1"): Priority(17750, 15),
    ("authentication.k8s.io", "v1"): Priority(17700, 15),
    ("authorization.k8s.io", "v1"): Priority(17600, 15),
    ("autoscaling", "v2"): Priority(17500, 30),
    ("autoscaling", "v1"): Priority(17500, 15),
    ("batch", "v1"): Priority(17400, 15),
    ("certificates.k8s.io", "v1"): Priority(17300, 15),
    ("networking.k8s.io", "v1"): Priority(17200, 15),
    ("policy", "v1"): Priority(17100, 15),
    ("rbac.authorization.k8s.io", "v1"): Priority(17000, 15),
    ("storage.k8s.io", "v1"): Priority(16800, 15),
    ("apiextensions.k8s.io", "v1"): Priority(16700, 15),
    ("admissionregistration.k8s.io", "v1"): Priority(16700, 15),
    ("scheduling.k8s.io", "v1"): Priority(16600, 15),
    ("coordination.k8s.io", "v1"): Priority(16500, 15),
    ("node.k8s.io", "v1"): Priority(16300, 15),
    ("discovery.k8s.io", "v1"): Priority(16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): Priority(16100, 21),
    ("storagemigration.k8s.io", "v1"): Priority(15800, 15),
    ("resource.k8s.io", "v1"): Priority(16200, 21),
    # metrics-server's APIService (its manifests' priorities); served in process here.
    ("metrics.k8s.io", "v1beta1"): Priority(100, 100),
}
