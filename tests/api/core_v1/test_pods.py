"""Pod defaulting and validation against upstream's values and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import pods

Object = dict[str, Any]


def _pod(**spec: Any) -> Object:
    base: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec},
    }
    return base


def _defaulted(pod: Object) -> Object:
    defaults.set_defaults_pod(pod)
    return pod


def _messages(errors: Any) -> list[str]:
    return [str(error) for error in errors]


def test_pod_spec_defaults_match_upstream() -> None:
    """A minimal pod gets upstream's PodSpec and container defaults."""
    spec = _defaulted(_pod())["spec"]
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    container = spec["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        pytest.param("nginx", "Always", id="no-tag-means-latest"),
        pytest.param("nginx:latest", "Always", id="latest"),
        pytest.param("nginx:1.27", "IfNotPresent", id="tagged"),
        pytest.param("nginx@sha256:" + "a" * 64, "IfNotPresent", id="digest"),
        pytest.param("localhost:5000/app", "Always", id="registry-port-no-tag"),
        pytest.param("localhost:5000/app:v1", "IfNotPresent", id="registry-port-tag"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    """imagePullPolicy is Always only for :latest or untagged images."""
    assert defaults.default_pull_policy(image) == policy


def test_nested_defaults_cover_ports_probes_env_and_volumes() -> None:
    """Ports, probes, fieldRefs and volume sources get their generated defaults."""
    pod = _pod(
        volumes=[
            {"name": "scratch"},
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "host", "hostPath": {"path": "/tmp"}},
        ]
    )
    container = pod["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 80}]
    container["livenessProbe"] = {"httpGet": {"port": 80}}
    container["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    _defaulted(pod)
    assert container["ports"][0]["protocol"] == "TCP"
    assert container["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    volumes = pod["spec"]["volumes"]
    assert volumes[0]["emptyDir"] == {}
    assert volumes[1]["configMap"]["defaultMode"] == 420
    assert volumes[2]["hostPath"]["type"] == ""


def test_requests_default_from_limits_on_pods_only() -> None:
    """Limits without requests become requests on Pods, but not in templates."""
    resources = {"limits": {"cpu": "500m", "memory": "128Mi"}}
    pod = _pod()
    pod["spec"]["containers"][0]["resources"] = copy.deepcopy(resources)
    _defaulted(pod)
    assert pod["spec"]["containers"][0]["resources"]["requests"] == resources["limits"]
    template = {
        "spec": {"containers": [{"name": "a", "image": "x", "resources": copy.deepcopy(resources)}]}
    }
    defaults.set_defaults_pod_template_spec(template)
    assert "requests" not in template["spec"]["containers"][0]["resources"]
    assert "enableServiceLinks" not in template["spec"]


def test_defaulting_is_idempotent() -> None:
    """Defaulting a defaulted pod changes nothing."""
    pod = _defaulted(_pod(volumes=[{"name": "v"}]))
    again = _defaulted(copy.deepcopy(pod))
    assert again == pod


def test_a_defaulted_minimal_pod_is_valid() -> None:
    """The smallest useful pod passes validation."""
    assert _messages(pods.validate_pod(_defaulted(_pod()))) == []


def _container(**fields: Any) -> Object:
    return {"name": "app", "image": "nginx", **fields}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda p: p["spec"].update(containers=[]),
            "spec.containers: Required value",
            id="no-containers",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(image=""),
            "spec.containers[0].image: Required value",
            id="no-image",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"].append(_container()),
            'spec.containers[1].name: Duplicate value: "app"',
            id="duplicate-container",
        ),
        pytest.param(
            lambda p: p["spec"].update(restartPolicy="Sometimes"),
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            id="restart-policy",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(
                ports=[{"containerPort": 70000, "protocol": "TCP"}]
            ),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            id="port-range",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(
                ports=[{"containerPort": 80, "protocol": "HTTP"}]
            ),
            'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            id="port-protocol",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(
                volumeMounts=[{"name": "data", "mountPath": "/d"}]
            ),
            'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            id="mount-without-volume",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(
                resources={"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}
            ),
            'spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m',
            id="request-over-limit",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(resources={"limits": {"gpu": "1"}}),
            'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers',
            id="unknown-resource",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(
                livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}
            ),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            id="liveness-success-threshold",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(readinessProbe={"periodSeconds": 5}),
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            id="probe-without-handler",
        ),
        pytest.param(
            lambda p: p["spec"].update(
                volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]
            ),
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
            id="two-volume-sources",
        ),
        pytest.param(
            lambda p: p["spec"].update(volumes=[{"name": "v", "secret": {}}]),
            "spec.volumes[0].secret.secretName: Required value",
            id="secret-volume-name",
        ),
        pytest.param(
            lambda p: p["spec"]["containers"][0].update(
                env=[
                    {
                        "name": "A",
                        "value": "x",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                    }
                ]
            ),
            'spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
            id="env-value-and-from",
        ),
        pytest.param(
            lambda p: p["spec"].update(activeDeadlineSeconds=0),
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            id="active-deadline",
        ),
        pytest.param(
            lambda p: p["spec"].update(tolerations=[{"operator": "Equal", "value": "x"}]),
            'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"',
            id="toleration-without-key",
        ),
        pytest.param(
            lambda p: (
                p["spec"].update(hostNetwork=True)
                or p["spec"]["containers"][0].update(
                    ports=[{"containerPort": 80, "hostPort": 81, "protocol": "TCP"}]
                )
            ),
            "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true",
            id="host-network-port",
        ),
    ],
)
def test_typical_pod_mistakes_get_upstreams_message(mutate: Any, expected: str) -> None:
    """Each common mistake is refused with upstream's field path and message."""
    pod = _pod()
    mutate(pod)
    _defaulted(pod)
    assert expected in _messages(pods.validate_pod(pod))


def _stored() -> Object:
    pod = _defaulted(_pod())
    pod["metadata"]["resourceVersion"] = "5"
    return pod


def test_changing_the_image_is_an_allowed_pod_update() -> None:
    """Images may change on a running pod."""
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert _messages(pods.validate_pod_update(new, old)) == []


def test_other_spec_changes_get_the_pod_updates_message() -> None:
    """Anything else is refused with upstream's list of updatable fields."""
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    errors = pods.validate_pod_update(new, old)
    assert len(errors) == 1
    assert str(errors[0]).startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
        "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
        "was previously negative)\n"
    )
    assert '- \trestartPolicy: "Always",' in str(errors[0])


@pytest.mark.parametrize(
    ("old_deadline", "new_deadline", "expected"),
    [
        pytest.param(None, 30, [], id="set"),
        pytest.param(30, 10, [], id="decrease"),
        pytest.param(
            10,
            30,
            [
                "spec.activeDeadlineSeconds: Invalid value: 30: must be less than or equal to previous value"
            ],
            id="increase",
        ),
        pytest.param(
            10,
            None,
            [
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ],
            id="unset",
        ),
    ],
)
def test_active_deadline_may_only_shrink(
    old_deadline: int | None, new_deadline: int | None, expected: list[str]
) -> None:
    """activeDeadlineSeconds may be set or lowered, never raised or removed."""
    old = _stored()
    if old_deadline is not None:
        old["spec"]["activeDeadlineSeconds"] = old_deadline
    new = copy.deepcopy(old)
    new["spec"].pop("activeDeadlineSeconds", None)
    if new_deadline is not None:
        new["spec"]["activeDeadlineSeconds"] = new_deadline
    assert _messages(pods.validate_pod_update(new, old)) == expected


def test_adding_a_container_is_refused() -> None:
    """The container list length is fixed after creation."""
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["containers"].append(dict(new["spec"]["containers"][0], name="two"))
    assert _messages(pods.validate_pod_update(new, old)) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    ]


def test_template_selector_paths_and_ephemeral_containers() -> None:
    """Template validation reports under the given path and forbids ephemeral containers."""
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "a", "image": ""}],
            "ephemeralContainers": [{"name": "d", "image": "busybox"}],
        },
    }
    defaults.set_defaults_pod_template_spec(template)
    messages = _messages(
        pods.validate_pod_template_spec(template, pods.field.Path("spec", "template"))
    )
    assert "spec.template.spec.containers[0].image: Required value" in messages
    assert (
        "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template"
        in messages
    )
