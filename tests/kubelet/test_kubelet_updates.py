"""Which pod updates start a kubelet sync: not a change of status alone (upstream's pod config)."""

from __future__ import annotations

from typing import Any

from kajitori.kubelet import kubelet

Object = dict[str, Any]


def _pod(**meta: Any) -> Object:
    return {
        "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"a": "1"}, **meta},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Pending"},
    }


def test_a_status_change_alone_is_not_synced() -> None:
    old = _pod(resourceVersion="1")
    echo = {**_pod(resourceVersion="2"), "status": {"phase": "Running"}}
    assert kubelet._only_status_changed(old, echo)


def test_spec_labels_annotations_deletion_and_uid_changes_are_synced() -> None:
    old = _pod()
    changed = [
        {**old, "spec": {**old["spec"], "nodeName": "n2"}},
        _pod(labels={"a": "2"}),
        _pod(annotations={"kajitori.io/simulate-exit-code": "1"}),
        _pod(deletionTimestamp="2026-01-01T00:00:00Z", deletionGracePeriodSeconds=0),
        _pod(uid="other"),
    ]
    for new in changed:
        assert not kubelet._only_status_changed(old, new), new
