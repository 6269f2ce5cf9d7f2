"""PodTemplates, RuntimeClasses and ComponentStatuses as upstream 1.37 serves them.

Against one real ``kajitori up`` through the real kubectl and the official
Python client: discovery (``kubectl api-resources``: scope, short names,
verbs), create/get/list/delete, the server's table columns, upstream's 422
messages, the RuntimeClass admission plugin (an unknown class refused, the
class's overhead and scheduling set on the pod), and ``kubectl get cs`` with
its deprecation warning (decision 0081).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from kajitori.testing.cluster import KajitoriCluster, wait_until

NS = "builtins"


@pytest.fixture(scope="module")
def api(cluster: KajitoriCluster) -> Iterator[client.ApiClient]:
    """An ApiClient from the cluster's kubeconfig, with a namespace for this module."""
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    client.CoreV1Api(api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NS))
    )
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def node(api: client.ApiClient) -> client.NodeV1Api:
    return client.NodeV1Api(api)


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines() if line.strip()]


def status_of(exc: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


def pod_template(name: str, image: str | None = "nginx:1.25") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web"}
    if image is not None:
        container["image"] = image
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": {
            "metadata": {"labels": {"app": name, "tier": "front"}},
            "spec": {"containers": [container, {"name": "cache", "image": "redis:7"}]},
        },
    }


def runtime_class(name: str, handler: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": name},
        "handler": handler,
        **extra,
    }


# ----- discovery ------------------------------------------------------------------


def test_api_resources_lists_the_three_as_upstream(cluster: KajitoriCluster) -> None:
    """Scope, short names and verbs as upstream's discovery reports them."""
    out = cluster.kubectl("api-resources", "-o", "wide", "--no-headers").stdout
    by_name = {r[0]: r for r in rows(out)}
    assert by_name["componentstatuses"][:5] == [
        "componentstatuses",
        "cs",
        "v1",
        "false",
        "ComponentStatus",
    ]
    assert by_name["componentstatuses"][5] == "get,list"
    assert by_name["podtemplates"][:4] == ["podtemplates", "v1", "true", "PodTemplate"]
    assert by_name["runtimeclasses"][:4] == [
        "runtimeclasses",
        "node.k8s.io/v1",
        "false",
        "RuntimeClass",
    ]
    everything = "create,delete,deletecollection,get,list,patch,update,watch"
    assert by_name["podtemplates"][4] == everything
    assert by_name["runtimeclasses"][4] == everything


def test_openapi_describes_the_kinds(cluster: KajitoriCluster) -> None:
    """kubectl explain reads the kinds from the served OpenAPI."""
    explained = cluster.kubectl("explain", "runtimeclass.handler").stdout
    assert "RuntimeClass" in explained and "handler" in explained
    assert "template" in cluster.kubectl("explain", "podtemplate").stdout


TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def table_columns(api: client.ApiClient, path: str) -> list[tuple[str, str]]:
    """(name, description) of each column the server's Table for ``path`` defines."""
    url = api.configuration.host + path
    response = api.call_api("GET", url, header_params={"Accept": TABLE})
    response.read()
    table = json.loads(response.data)
    assert table["kind"] == "Table"
    return [(c["name"], c["description"]) for c in table["columnDefinitions"]]


def test_table_columns_are_upstreams(api: client.ApiClient) -> None:
    """Names and descriptions of upstream's printers (RuntimeClass's Handler has none)."""
    assert table_columns(api, "/apis/node.k8s.io/v1/runtimeclasses")[1] == ("Handler", "")
    assert table_columns(api, f"/api/v1/namespaces/{NS}/podtemplates")[1:] == [
        ("Containers", "Names of each container in the template."),
        ("Images", "Images referenced by each container in the template."),
        ("Pod Labels", "The labels for the pod template."),
    ]
    assert table_columns(api, "/api/v1/componentstatuses")[1:] == [
        ("Status", "Status of the component conditions"),
        ("Message", "Message of the component conditions"),
        ("Error", "Error of the component conditions"),
    ]


# ----- PodTemplates -----------------------------------------------------------------


def test_pod_template_crud_through_the_python_client(core: client.CoreV1Api) -> None:
    """Created with the pod defaults and generation 1; a template change bumps it; deleted."""
    created = core.create_namespaced_pod_template(NS, pod_template("web"))
    assert created.metadata.generation == 1
    spec = created.template.spec
    assert (spec.restart_policy, spec.dns_policy, spec.termination_grace_period_seconds) == (
        "Always",
        "ClusterFirst",
        30,
    )
    assert spec.containers[0].image_pull_policy == "IfNotPresent"
    listed = core.list_namespaced_pod_template(NS)
    assert [t.metadata.name for t in listed.items] == ["web"]
    core.patch_namespaced_pod_template(
        "web", NS, {"template": {"metadata": {"labels": {"v": "2"}}}}
    )
    assert core.read_namespaced_pod_template("web", NS).metadata.generation == 2
    core.patch_namespaced_pod_template("web", NS, {"metadata": {"labels": {"seen": "yes"}}})
    assert core.read_namespaced_pod_template("web", NS).metadata.generation == 2
    core.delete_namespaced_pod_template("web", NS)
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_pod_template("web", NS)
    assert caught.value.status == 404


def test_kubectl_prints_pod_templates_as_upstream(cluster: KajitoriCluster) -> None:
    """NAME CONTAINERS IMAGES POD LABELS, as upstream's server-side printer."""
    cluster.kubectl("create", "-n", NS, "-f", "-", stdin=json.dumps(pod_template("printed")))
    table = rows(cluster.kubectl("get", "podtemplates", "-n", NS).stdout)
    assert table[0] == ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"]
    assert table[1] == ["printed", "web,cache", "nginx:1.25,redis:7", "app=printed,tier=front"]
    cluster.kubectl("delete", "podtemplate", "printed", "-n", NS)
    assert "No resources found" in cluster.kubectl("get", "podtemplates", "-n", NS).stderr


def test_pod_template_container_without_image_is_invalid(core: client.CoreV1Api) -> None:
    """The template is validated as a pod spec, under template.spec."""
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod_template(NS, pod_template("noimage", image=None))
    status = status_of(caught.value)
    assert caught.value.status == 422
    assert status["message"] == (
        'PodTemplate "noimage" is invalid: template.spec.containers[0].image: Required value'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "template.spec.containers[0].image",
        }
    ]


# ----- RuntimeClasses ---------------------------------------------------------------


def test_runtime_class_crud_and_table(node: client.NodeV1Api, cluster: KajitoriCluster) -> None:
    """Cluster-scoped CRUD through the client; NAME HANDLER AGE in kubectl get."""
    node.create_runtime_class(runtime_class("kata", "kata-qemu"))
    assert node.read_runtime_class("kata").handler == "kata-qemu"
    assert "kata" in [r.metadata.name for r in node.list_runtime_class().items]
    table = rows(cluster.kubectl("get", "runtimeclasses").stdout)
    assert table[0] == ["NAME", "HANDLER", "AGE"]
    assert table[1][:2] == ["kata", "kata-qemu"]
    node.delete_runtime_class("kata")
    with pytest.raises(client.ApiException) as caught:
        node.read_runtime_class("kata")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            runtime_class("bad-handler", "Run_SC"),
            'RuntimeClass.node.k8s.io "bad-handler" is invalid: handler: Invalid value: "Run_SC": '
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
            "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            id="handler",
        ),
        pytest.param(
            runtime_class("bad-overhead", "runc", overhead={"podFixed": {"cpu": "-1"}}),
            'RuntimeClass.node.k8s.io "bad-overhead" is invalid: overhead.limits[cpu]: '
            'Invalid value: "-1": must be greater than or equal to 0',
            id="overhead",
        ),
        pytest.param(
            runtime_class(
                "bad-scheduling",
                "runc",
                scheduling={"tolerations": [{"key": "a", "operator": "Equal", "value": "x y"}]},
            ),
            'RuntimeClass.node.k8s.io "bad-scheduling" is invalid: '
            'scheduling.tolerations[0].operator: Invalid value: "x y": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
            "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            id="toleration",
        ),
    ],
)
def test_invalid_runtime_classes_are_refused(
    node: client.NodeV1Api, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.ApiException) as caught:
        node.create_runtime_class(body)
    assert caught.value.status == 422
    assert status_of(caught.value)["message"] == message


def test_runtime_class_handler_is_immutable(cluster: KajitoriCluster) -> None:
    """kubectl patch of handler is a 422 naming the field immutable; other fields may change."""
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(runtime_class("fixed", "runc")))
    refused = cluster.kubectl(
        "patch", "runtimeclass", "fixed", "-p", '{"handler":"crun"}', check=False
    )
    assert refused.returncode == 1
    assert (
        'The RuntimeClass "fixed" is invalid: handler: Invalid value: "crun": field is immutable'
        in refused.stderr
    )
    cluster.kubectl("label", "runtimeclass", "fixed", "tier=base")
    assert cluster.get_json("runtimeclass", "fixed")["handler"] == "runc"


def test_runtime_class_admission(core: client.CoreV1Api, node: client.NodeV1Api) -> None:
    """An unknown class is Forbidden; a known one's overhead and scheduling land on the pod."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sandboxed"},
        "spec": {
            "runtimeClassName": "gvisor",
            "nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "app", "image": "nginx"}],
        },
    }
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod(NS, pod)
    assert caught.value.status == 403
    assert status_of(caught.value)["message"] == (
        'pods "sandboxed" is forbidden: pod rejected: RuntimeClass "gvisor" not found'
    )
    node.create_runtime_class(
        runtime_class(
            "gvisor",
            "runsc",
            overhead={"podFixed": {"cpu": "250m", "memory": "64Mi"}},
            scheduling={
                "nodeSelector": {"sandbox": "gvisor"},
                "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}],
            },
        )
    )
    created = core.create_namespaced_pod(NS, pod)
    assert created.spec.overhead == {"cpu": "250m", "memory": "64Mi"}
    assert created.spec.node_selector == {"disk": "ssd", "sandbox": "gvisor"}
    assert ("sandbox", "Exists", "NoSchedule") in [
        (t.key, t.operator, t.effect) for t in created.spec.tolerations
    ]
    conflicting = {**pod, "metadata": {"name": "conflict"}}
    conflicting["spec"] = {**pod["spec"], "nodeSelector": {"sandbox": "kata"}}
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod(NS, conflicting)
    assert status_of(caught.value)["message"] == (
        'pods "conflict" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] '
        "= gvisor; pod.spec.nodeSelector[sandbox] = kata"
    )
    no_class = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "overhead-alone"}}
    no_class["spec"] = {"overhead": {"cpu": "1"}, "containers": [{"name": "a", "image": "nginx"}]}
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_pod(NS, no_class)
    assert status_of(caught.value)["message"] == (
        'pods "overhead-alone" is forbidden: pod rejected: Pod Overhead set without '
        "corresponding RuntimeClass defined Overhead"
    )


# ----- ComponentStatuses ------------------------------------------------------------


def test_kubectl_get_cs_shows_the_components_and_the_warning(cluster: KajitoriCluster) -> None:
    """In one process the scheduler and controller manager are this process's own."""
    # ``up`` starts them just after it reports ready; they are reported once started.
    wait_until(
        lambda: [r[1] for r in rows(cluster.kubectl("get", "cs").stdout)[1:]] == ["Healthy"] * 3,
        what="the components reported healthy",
    )
    result = cluster.kubectl("get", "cs")
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in result.stderr
    table = rows(result.stdout)
    assert table[0] == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    assert sorted(table[1:]) == [
        ["controller-manager", "Healthy", "ok"],
        ["etcd-0", "Healthy", "ok"],
        ["scheduler", "Healthy", "ok"],
    ]


def test_component_statuses_through_the_python_client(core: client.CoreV1Api) -> None:
    """Get and list answer ComponentStatus objects; an unknown name is upstream's 500."""
    etcd = core.read_component_status("etcd-0")
    assert [(c.type, c.status, c.message) for c in etcd.conditions] == [("Healthy", "True", "ok")]
    listed = core.list_component_status(field_selector="metadata.name=scheduler")
    assert [c.metadata.name for c in listed.items] == ["scheduler"]
    with pytest.raises(client.ApiException) as caught:
        core.read_component_status("kube-proxy")
    assert caught.value.status == 500
    assert status_of(caught.value)["message"] == (
        "Internal error occurred: Component not found: kube-proxy"
    )


def test_component_statuses_are_read_only(cluster: KajitoriCluster) -> None:
    """Only get and list are served: a delete or a watch is refused with a 405."""
    result = cluster.kubectl("delete", "cs", "etcd-0", check=False)
    assert result.returncode == 1
    assert "Error from server (MethodNotAllowed)" in result.stderr
    watched = cluster.kubectl("get", "cs", "--watch", check=False, timeout=20)
    assert watched.returncode == 1
    assert "(MethodNotAllowed)" in watched.stderr
