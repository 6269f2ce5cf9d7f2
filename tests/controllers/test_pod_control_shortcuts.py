"""pod_control's shortcuts (a memoized prefix, a shared template spec) make the pod the
plain path makes."""

from __future__ import annotations

import copy
import random

import orjson

from kajitori.controllers.common import pod_control


def test_the_memoized_prefix_is_the_checked_one() -> None:
    rng = random.Random(7)
    owners = ["web", "a" * 253, "a" * 252, "x.y", "x.", "-", "Web", "a" * 62]
    owners += ["".join(rng.choice("ab.-") for _ in range(rng.randint(1, 8))) for _ in range(200)]
    for owner in owners:
        assert pod_control.pod_prefix(owner) == pod_control.pod_prefix.__wrapped__(owner)


TEMPLATE = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}},
    "spec": {"containers": [{"name": "c", "image": "nginx", "env": [{"name": "E"}]}]},
}
OWNER = {"metadata": {"name": "web-7d9f", "namespace": "d", "uid": "u"}}
REF = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "u"}


def test_a_shared_spec_serializes_as_the_copied_one() -> None:
    template = copy.deepcopy(TEMPLATE)
    shared = pod_control.pod_from_template(template, owner=OWNER, owner_ref=REF, copy_spec=False)
    copied = pod_control.pod_from_template(template, owner=OWNER, owner_ref=REF)
    assert orjson.dumps(shared) == orjson.dumps(copied)
    assert shared["spec"] is template["spec"]
    assert copied["spec"] is not template["spec"]
    # The metadata is the pod's own: a change to it leaves the template alone.
    shared["metadata"]["labels"]["x"] = "y"
    assert template == TEMPLATE
