"""Defaults of the core kinds validated elsewhere (secrets, namespaces, volumes, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kajitori.api.core_v1 import defaults

Object = dict[str, Any]


@pytest.mark.parametrize(
    ("setter", "obj", "expected"),
    [
        pytest.param(
            defaults.set_defaults_secret,
            {"data": {}},
            {"data": {}, "type": "Opaque"},
            id="secret-opaque",
        ),
        pytest.param(
            defaults.set_defaults_namespace,
            {"metadata": {"name": "dev"}},
            {
                "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}},
                "status": {"phase": "Active"},
            },
            id="namespace",
        ),
        pytest.param(
            defaults.set_defaults_persistent_volume,
            {"spec": {"hostPath": {"path": "/d"}}},
            {
                "spec": {
                    "hostPath": {"path": "/d", "type": ""},
                    "persistentVolumeReclaimPolicy": "Retain",
                    "volumeMode": "Filesystem",
                },
                "status": {"phase": "Pending"},
            },
            id="pv",
        ),
        pytest.param(
            defaults.set_defaults_persistent_volume_claim,
            {"spec": {}},
            {"spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}},
            id="pvc",
        ),
        pytest.param(
            defaults.set_defaults_limit_range,
            {
                "spec": {
                    "limits": [
                        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}
                    ]
                }
            },
            {
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "max": {"cpu": "2"},
                            "min": {"memory": "64Mi"},
                            "default": {"cpu": "2"},
                            "defaultRequest": {"cpu": "2", "memory": "64Mi"},
                        }
                    ]
                }
            },
            id="limit-range",
        ),
        pytest.param(
            defaults.set_defaults_endpoints,
            {"subsets": [{"ports": [{"port": 80}]}]},
            {"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]},
            id="endpoints-tcp",
        ),
    ],
)
def test_core_kind_defaults(
    setter: Callable[[Object], None], obj: Object, expected: Object
) -> None:
    """Each kind gets upstream's defaults, and defaulting twice changes nothing."""
    setter(obj)
    assert obj == expected
    setter(obj)
    assert obj == expected
