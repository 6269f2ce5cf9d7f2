"""The protobuf wire format, checked against bodies the real kubectl sends.

A small HTTP server on loopback plays the API server: it answers the bit of
discovery kubectl asks for and records every POST. ``decode`` of a recorded
body must equal what the same kubectl command prints with ``-o json
--dry-run=client``: both are upstream's Go structs rendered as JSON, one via
protobuf and ours, one via Go's encoding/json.
"""

from __future__ import annotations

import http.server
import os
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from kajitori.api import protobuf

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

_RESOURCES = {
    "/api/v1": ("v1", ["pods", "configmaps", "secrets", "services", "namespaces"]),
    "/apis/apps/v1": ("apps/v1", ["deployments"]),
}


@dataclass
class _Recorder:
    """What the fake API server saw: (path, content type, body) per POST."""

    posts: list[tuple[str, str, bytes]] = field(default_factory=list)


def _discovery(path: str) -> Any:
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        version = {"groupVersion": "apps/v1", "version": "v1"}
        group = {"name": "apps", "versions": [version], "preferredVersion": version}
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
    if path in _RESOURCES:
        group_version, plurals = _RESOURCES[path]
        resources = [
            {
                "name": p,
                "singularName": "",
                "namespaced": p != "namespaces",
                "kind": p.title(),
                "verbs": ["create", "get"],
            }
            for p in plurals
        ]
        return {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}
    return None


def _reply_to(body: dict[str, Any]) -> dict[str, Any]:
    """Echo the object, with the status the token and can-i commands wait for."""
    if body["kind"] == "TokenRequest":
        body["status"] = {"token": "t0k3n", "expirationTimestamp": "2030-01-01T00:00:00Z"}
    if body["kind"] == "SelfSubjectAccessReview":
        body["status"] = {"allowed": True}
    body["metadata"]["name"] = body["metadata"].get("name") or "x"
    return body


def _handler(recorder: _Recorder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, code: int, obj: Any) -> None:
            data = orjson.dumps(obj)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            found = _discovery(self.path.split("?")[0])
            self._send(200 if found else 404, found or {"kind": "Status", "code": 404})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recorder.posts.append((self.path, self.headers.get("Content-Type", ""), body))
            try:
                self._send(201, _reply_to(protobuf.decode(body)))
            except ValueError as exc:
                self._send(400, {"kind": "Status", "code": 400, "message": str(exc)})

    return Handler


@dataclass
class _Kubectl:
    env: dict[str, str]
    recorder: _Recorder

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def capture(self, *args: str) -> tuple[str, str, bytes]:
        """The one POST a command makes against the fake server."""
        before = len(self.recorder.posts)
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        assert len(self.recorder.posts) == before + 1, result.stderr
        return self.recorder.posts[-1]

    def dry_run(self, verb: str, *args: str) -> Any:
        # Flags go first: anything after a "--" in args is the container's command.
        result = self.run(verb, "-o", "json", "--dry-run=client", *args)
        assert result.returncode == 0, result.stderr
        return orjson.loads(result.stdout)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Kubectl]:
    """kubectl pointed at a recording fake API server on 127.0.0.1."""
    home = tmp_path_factory.mktemp("kubectl-home")
    recorder = _Recorder()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "default"}}
        ],
        "current-context": "x",
    }
    (home / "config").write_bytes(orjson.dumps(config))
    (home / "blob.bin").write_bytes(bytes(range(256)))
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "KUBECONFIG": str(home / "config")}
    try:
        yield _Kubectl(env, recorder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["configmap", "x", "--from-literal=a=b", "--from-literal=c="], id="configmap"),
        pytest.param(["configmap", "bin", "--from-file=blob=BLOB"], id="configmap-binary-data"),
        pytest.param(["secret", "generic", "s", "--from-literal=k=v"], id="secret"),
        pytest.param(
            ["secret", "docker-registry", "r", "--docker-username=u", "--docker-password=p"],
            id="secret-docker",
        ),
        pytest.param(["namespace", "n"], id="namespace"),
        pytest.param(["serviceaccount", "sa"], id="serviceaccount"),
        pytest.param(
            ["deployment", "d", "--image=nginx", "--replicas=2", "--port=80"], id="deployment"
        ),
        pytest.param(
            ["deployment", "zero", "--image=nginx", "--replicas=0"], id="deployment-zero-replicas"
        ),
        pytest.param(["service", "clusterip", "svc", "--tcp=80:8080"], id="service-clusterip"),
        pytest.param(
            ["service", "nodeport", "np", "--tcp=5678:8080", "--node-port=30080"],
            id="service-nodeport",
        ),
        pytest.param(["job", "j", "--image=busybox", "--", "sh", "-c", "true"], id="job"),
        pytest.param(["cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *"], id="cronjob"),
        pytest.param(["quota", "q", "--hard=cpu=1,memory=1Gi,pods=2"], id="resourcequota"),
        pytest.param(
            ["priorityclass", "pc", "--value=-5", "--description=low"], id="priorityclass-negative"
        ),
        pytest.param(["pdb", "p", "--selector=app=x", "--min-available=50%"], id="pdb-percent"),
        pytest.param(["pdb", "p2", "--selector=app=x", "--max-unavailable=1"], id="pdb-int"),
        pytest.param(["ingress", "ing", "--rule=foo.com/bar=svc:8080,tls=my-cert"], id="ingress"),
        pytest.param(
            ["role", "r", "--verb=get,list", "--resource=pods,deployments.apps"], id="role"
        ),
        pytest.param(
            [
                "clusterrolebinding",
                "crb",
                "--clusterrole=view",
                "--user=alice",
                "--serviceaccount=default:sa",
            ],
            id="clusterrolebinding",
        ),
    ],
)
def test_decoding_kubectl_create_bodies_gives_what_kubectl_renders_as_json(
    kubectl: _Kubectl, args: list[str]
) -> None:
    """decode() of the protobuf body kubectl POSTs equals kubectl's own -o json rendering."""
    home = pathlib.Path(kubectl.env["HOME"])
    args = [a.replace("BLOB", str(home / "blob.bin")) for a in args]
    _, content_type, body = kubectl.capture("create", *args)
    assert content_type == protobuf.CONTENT_TYPE
    assert protobuf.decode(body) == kubectl.dry_run("create", *args)


def test_binary_configmap_data_decodes_to_base64(kubectl: _Kubectl) -> None:
    """Non-UTF-8 file content arrives in binaryData as the base64 of the exact bytes."""
    blob = pathlib.Path(kubectl.env["HOME"]) / "blob.bin"
    _, _, body = kubectl.capture("create", "configmap", "bin2", f"--from-file=blob={blob}")
    assert protobuf.decode(body)["binaryData"] == {
        "blob": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w=="
    }


def test_kubectl_create_token_sends_a_token_request_we_can_read(kubectl: _Kubectl) -> None:
    """``kubectl create token`` POSTs a protobuf TokenRequest to the token subresource."""
    path, _, body = kubectl.capture(
        "create", "token", "sa", "--duration=1h", "--audience=a", "--audience=b"
    )
    assert path.startswith("/api/v1/namespaces/default/serviceaccounts/sa/token")
    request = protobuf.decode(body)
    assert request["apiVersion"] == "authentication.k8s.io/v1"
    assert request["kind"] == "TokenRequest"
    assert request["spec"]["audiences"] == ["a", "b"]
    assert request["spec"]["expirationSeconds"] == 3600


def test_kubectl_auth_can_i_sends_a_self_subject_access_review_we_can_read(
    kubectl: _Kubectl,
) -> None:
    """``kubectl auth can-i`` POSTs a protobuf SelfSubjectAccessReview."""
    result = kubectl.run("auth", "can-i", "list", "deployments.apps", "--subresource=scale")
    assert result.stdout.strip() == "yes", result.stderr
    path, _, body = kubectl.recorder.posts[-1]
    assert path.startswith("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    review = protobuf.decode(body)
    assert review["kind"] == "SelfSubjectAccessReview"
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "default",
        "verb": "list",
        "group": "apps",
        "resource": "deployments",
        "subresource": "scale",
    }


# --- round trips and special types -----------------------------------------------------------

_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "1234",
        "resourceVersion": "7",
        "generation": 3,
        "creationTimestamp": "2024-05-06T07:08:09Z",
        "deletionTimestamp": "2024-05-06T08:00:00Z",
        "deletionGracePeriodSeconds": 0,
        "labels": {"app": "p"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "rs",
                "uid": "u",
                "controller": True,
            }
        ],
        "finalizers": ["f"],
        "managedFields": [
            {
                "manager": "kubectl",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2024-05-06T07:08:09Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
            }
        ],
    },
    "spec": {
        "volumes": [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}],
        "containers": [
            {
                "name": "c",
                "image": "nginx",
                "command": ["sh"],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "resources": {
                    "limits": {"cpu": "1500m", "memory": "1Gi"},
                    "requests": {"cpu": "1"},
                },
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                "readinessProbe": {"tcpSocket": {"port": 8080}},
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"supplementalGroups": [1, 2, -3]},
        "tolerations": [
            {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 0}
        ],
    },
    "status": {
        "phase": "Running",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2024-05-06T07:08:10Z",
            }
        ],
        "startTime": "2024-05-06T07:08:09Z",
    },
}

_SAMPLES = [
    pytest.param(_POD, id="pod"),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"k": "dg==", "empty": ""},
            "type": "Opaque",
        },
        id="secret-bytes",
    ),
    pytest.param(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "l"},
            "spec": {
                "holderIdentity": "me",
                "leaseDurationSeconds": 15,
                "acquireTime": "2024-05-06T07:08:09.123456Z",
                "renewTime": "2024-05-06T07:08:10.000001Z",
                "leaseTransitions": 0,
            },
        },
        id="lease-microtime",
    ),
    pytest.param(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e", "namespace": "d"},
            "eventTime": "2024-05-06T07:08:09.500000Z",
            "reportingController": "c",
            "reportingInstance": "i",
            "action": "A",
            "reason": "R",
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "n",
            "type": "Normal",
            "deprecatedSource": {},
            "deprecatedFirstTimestamp": None,
            "deprecatedLastTimestamp": None,
        },
        id="event-v1",
    ),
    pytest.param(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "es"},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": False}}
            ],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
        id="endpointslice",
    ),
    pytest.param(
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {},
            "spec": {"token": "t", "audiences": ["a"]},
            "status": {
                "authenticated": True,
                "user": {"username": "u", "groups": ["g"], "extra": {"x": ["1", "2"], "e": []}},
            },
        },
        id="tokenreview-extra",
    ),
    pytest.param(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {},
            "spec": {
                "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                "user": "u",
                "extra": {"k": ["v"]},
            },
            "status": {"allowed": False, "denied": True, "reason": "no"},
        },
        id="subjectaccessreview",
    ),
    pytest.param(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "metadata": {},
            "spec": {"namespace": "d"},
            "status": {
                "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api"]}],
                "incomplete": False,
            },
        },
        id="selfsubjectrulesreview",
    ),
    pytest.param(
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"userInfo": {"username": "admin", "uid": "1", "groups": ["system:masters"]}},
        },
        id="selfsubjectreview",
    ),
    pytest.param(
        {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "d"},
            "spec": {"replicas": 2},
            "status": {"replicas": 3, "selector": "app=d"},
        },
        id="scale",
    ),
    pytest.param(
        {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "p", "namespace": "d"},
            "deleteOptions": {
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "u"},
                "dryRun": ["All"],
            },
        },
        id="eviction",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Foreground",
            "gracePeriodSeconds": 30,
        },
        id="deleteoptions",
    ),
    pytest.param(
        {"apiVersion": "apps/v1", "kind": "DeleteOptions", "orphanDependents": False},
        id="deleteoptions-in-a-group",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": "m",
            "reason": "NotFound",
            "details": {
                "name": "x",
                "kind": "pods",
                "causes": [{"reason": "FieldValueInvalid", "field": "a"}],
            },
            "code": 404,
        },
        id="status",
    ),
    pytest.param(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "sc"},
            "provisioner": "p",
            "parameters": {"a": "b"},
            "reclaimPolicy": "Delete",
            "allowVolumeExpansion": False,
            "volumeBindingMode": "WaitForFirstConsumer",
        },
        id="storageclass",
    ),
    pytest.param(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "np"},
            "spec": {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]
                },
                "ingress": [
                    {"ports": [{"protocol": "TCP", "port": 80, "endPort": 90}, {"port": "http"}]}
                ],
                "policyTypes": ["Ingress"],
            },
        },
        id="networkpolicy-intorstring",
    ),
    pytest.param(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "r"},
            "rules": [{"verbs": ["*"], "nonResourceURLs": ["/x"]}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]},
        },
        id="clusterrole",
    ),
    pytest.param(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {
                "podFailurePolicy": {
                    "rules": [
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 2]}}
                    ]
                },
                "template": {
                    "metadata": {},
                    "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]},
                },
            },
            "status": {},
        },
        id="job-repeated-ints",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "9", "continue": "c"},
            "items": [
                {"metadata": {"name": "a"}, "data": {"k": "v"}},
                {"metadata": {"name": "b"}, "immutable": True},
            ],
        },
        id="list",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {},
            "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}],
        },
        id="raw-extension-items",
    ),
]


@pytest.mark.parametrize("obj", _SAMPLES)
def test_encoding_then_decoding_gives_the_object_back(obj: dict[str, Any]) -> None:
    """decode(encode(x)) == x for objects written the way upstream renders them."""
    assert protobuf.decode(protobuf.encode(obj)) == obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d"},
                "spec": {
                    "selector": None,
                    "template": {"metadata": {}, "spec": {"containers": None}},
                    "strategy": {},
                },
                "status": {},
            },
            id="absent-structs-render-as-their-zero-value-and-nil-pointers-without-omitempty-as-null",
        ),
        pytest.param(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
                "rules": None,
            },
            id="nil-slice-without-omitempty-is-null",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s", "generation": 0, "labels": {}},
                "spec": {"ports": [{"port": 80, "nodePort": 0}], "clusterIPs": []},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {"ports": [{"port": 80, "targetPort": 0}]},
                "status": {"loadBalancer": {}},
            },
            id="zero-omitempty-scalars-and-empty-collections-vanish",
        ),
        pytest.param(
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": "d"},
                "spec": {"replicas": 0},
            },
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": "d"},
                "spec": {},
                "status": {"replicas": 0},
            },
            id="non-pointer-omitempty-zero-is-dropped-but-plain-zero-kept",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "n", "creationTimestamp": "2024-05-06T09:08:09.75+02:00"},
            },
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "n", "creationTimestamp": "2024-05-06T07:08:09Z"},
                "spec": {},
                "status": {},
            },
            id="time-is-utc-with-whole-seconds",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "q"},
                "spec": {"hard": {"cpu": 2, "pods": "10"}},
            },
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "q"},
                "spec": {"hard": {"cpu": "2", "pods": "10"}},
                "status": {},
            },
            id="numeric-quantities-become-strings",
        ),
    ],
)
def test_decoding_renders_json_as_upstream_go_structs_would(
    obj: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Absent and zero fields render by Go's pointer/omitempty/omitzero rules."""
    assert protobuf.decode(protobuf.encode(obj)) == expected


def test_zero_scalars_written_explicitly_by_go_vanish_only_where_omitempty() -> None:
    """gogo writes non-pointer zero scalars; pointers keep zero, omitempty non-pointers drop it."""
    # DeploymentSpec{replicas(*int32)=0 [1], minReadySeconds(int32)=0 [5], paused(bool)=false [7]}
    spec = b"\x08\x00\x28\x00\x38\x00"
    raw = b"\x0a\x00" + b"\x12" + bytes([len(spec)]) + spec
    body = _unknown(b"apps/v1", b"Deployment", raw)
    decoded = protobuf.decode(body)
    assert decoded["spec"]["replicas"] == 0
    assert "minReadySeconds" not in decoded["spec"]
    assert "paused" not in decoded["spec"]
    assert decoded["metadata"] == {}


def test_packed_and_unpacked_repeated_ints_decode_alike() -> None:
    """Repeated int32 fields accept proto's packed form as well as gogo's unpacked one."""
    unpacked = b"\x08\x01\x08\x02\x08\x7f"
    packed = b"\x0a\x03\x01\x02\x7f"
    # PodSecurityContext.supplementalGroups is field 4 (int64): rebuild with that tag.
    for body in (unpacked.replace(b"\x08", b"\x20"), b"\x22" + packed[1:]):
        pod = _unknown(
            b"v1", b"Pod", b"\x12" + bytes([len(body) + 2]) + b"\x72" + bytes([len(body)]) + body
        )
        assert protobuf.decode(pod)["spec"]["securityContext"]["supplementalGroups"] == [1, 2, 127]


def test_unknown_fields_are_skipped() -> None:
    """Fields from a newer upstream (unknown numbers) are ignored, as gogo does."""
    raw = (
        b"\x0a\x03\x0a\x01x" + b"\xf8\x07\x05" + b"\xfa\x07\x02hi"
    )  # fields 127 (varint) and 127 (bytes)
    assert protobuf.decode(_unknown(b"v1", b"ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
    }


def test_typemeta_gaps_are_filled_from_the_caller() -> None:
    """An empty typeMeta takes apiVersion/kind from the endpoint, as upstream's decoder does."""
    body = protobuf.MAGIC + b"\x12\x05\x0a\x03\x0a\x01x"
    assert protobuf.decode(body, api_version="v1", kind="Namespace")["metadata"] == {"name": "x"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty data", id="empty"),
        pytest.param(b'{"kind":"Pod"}', "does not appear to be a protobuf message", id="json"),
        pytest.param(protobuf.MAGIC, "empty body", id="magic-only"),
        pytest.param(protobuf.MAGIC + b"\x12\x05\x0a\x03", "end of data", id="truncated"),
        pytest.param(protobuf.MAGIC + b"\x12\x00", "Kind", id="no-kind"),
        pytest.param(
            b"k8s\x00\x0a\x0b\x0a\x02v1\x12\x05Nopes",
            'no kind "Nopes" is registered for version "v1"',
            id="unknown-kind",
        ),
        pytest.param(
            b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x02\x08\x01",
            "wrong wire type",
            id="wrong-wire-type",
        ),
        pytest.param(
            b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x03\x0b\x01\x00",
            "unsupported wire type 3",
            id="group",
        ),
        pytest.param(
            b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x04\x0a\x02\x0a\xff",
            "end of data",
            id="bad-length",
        ),
    ],
)
def test_bad_bodies_raise_value_error_saying_what_is_wrong(data: bytes, message: str) -> None:
    """Malformed input raises ValueError with a clear message, never another exception."""
    with pytest.raises(ValueError, match=message):
        protobuf.decode(data)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param({"kind": "Pod"}, "apiVersion and kind are required", id="no-apiversion"),
        pytest.param(
            {"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}},
            "illegal base64",
            id="bad-base64",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "x"}},
            "expected an array",
            id="not-a-list",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"generation": "1"}},
            "expected an integer",
            id="not-an-int",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}},
            "RFC 3339",
            id="bad-time",
        ),
    ],
)
def test_encoding_values_that_do_not_fit_raises_value_error(
    obj: dict[str, Any], message: str
) -> None:
    """encode() refuses values of the wrong JSON type with the field's path."""
    with pytest.raises(ValueError, match=message):
        protobuf.encode(obj)


def test_encoding_matches_go_envelope_bytes() -> None:
    """The envelope is magic + Unknown{typeMeta, raw, "", ""}, byte for byte as Go writes it."""
    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert (
        body
        == b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x05\x0a\x03\x0a\x01x\x1a\x00\x22\x00"
    )


def test_watch_event_frame_is_length_prefixed_with_the_object_inside() -> None:
    """A watch frame is a big-endian length, then WatchEvent{type, object.raw=protobuf body}."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    frame = protobuf.encode_watch_event("ADDED", obj)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    inner = protobuf.encode(obj)
    assert (
        frame[4:]
        == b"\x0a\x05ADDED\x12" + bytes([len(inner) + 2]) + b"\x0a" + bytes([len(inner)]) + inner
    )


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        pytest.param("application/vnd.kubernetes.protobuf", True, id="plain"),
        pytest.param("Application/VND.kubernetes.protobuf; charset=x", True, id="params-and-case"),
        pytest.param("application/vnd.kubernetes.protobuf;stream=watch", True, id="watch"),
        pytest.param("application/json", False, id="json"),
        pytest.param("application/cbor", False, id="cbor"),
    ],
)
def test_is_protobuf_matches_the_media_type_only(content_type: str, expected: bool) -> None:
    """is_protobuf ignores parameters and case."""
    assert protobuf.is_protobuf(content_type) is expected


@pytest.mark.parametrize(
    "kind",
    [
        "v1/Pod", "v1/ConfigMap", "v1/Secret", "v1/Namespace", "v1/Service", "v1/ServiceAccount", "v1/Node",
        "v1/Event", "v1/Endpoints", "v1/PersistentVolumeClaim", "v1/Binding", "apps/v1/Deployment",
        "apps/v1/StatefulSet", "apps/v1/DaemonSet", "apps/v1/ReplicaSet", "apps/v1/ControllerRevision",
        "batch/v1/Job", "batch/v1/CronJob", "coordination.k8s.io/v1/Lease", "discovery.k8s.io/v1/EndpointSlice",
        "events.k8s.io/v1/Event", "policy/v1/PodDisruptionBudget", "policy/v1/Eviction",
        "storage.k8s.io/v1/StorageClass", "storage.k8s.io/v1/CSIDriver", "networking.k8s.io/v1/Ingress",
        "networking.k8s.io/v1/NetworkPolicy", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
        "authentication.k8s.io/v1/TokenRequest", "authentication.k8s.io/v1/TokenReview",
        "authentication.k8s.io/v1/SelfSubjectReview", "authorization.k8s.io/v1/SelfSubjectAccessReview",
        "authorization.k8s.io/v1/SubjectAccessReview", "authorization.k8s.io/v1/SelfSubjectRulesReview",
        "autoscaling/v1/Scale", "v1/DeleteOptions", "policy/v1/DeleteOptions", "v1/Status",
    ],
)  # fmt: skip
def test_required_kinds_have_a_message(kind: str) -> None:
    """Every kind the API server must accept as protobuf maps to an upstream message."""
    api_version, _, name = kind.rpartition("/")
    assert protobuf.message_name(api_version, name) is not None


def _unknown(api_version: bytes, kind: bytes, raw: bytes) -> bytes:
    type_meta = (
        b"\x0a" + bytes([len(api_version)]) + api_version + b"\x12" + bytes([len(kind)]) + kind
    )
    return (
        protobuf.MAGIC
        + b"\x0a"
        + bytes([len(type_meta)])
        + type_meta
        + b"\x12"
        + bytes([len(raw)])
        + raw
    )
