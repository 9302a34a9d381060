"""deploy/k8s: rendered by kustomize (kubectl), validated against the Kubernetes API schemas.

`kubectl kustomize` renders the kustomization without a cluster; kubernetes-validate checks
every rendered resource, strictly (no unknown fields), against the schemas of the oldest and
the newest Kubernetes versions supported here. The rest checks what the schemas cannot.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings
from tests.deploy.files import K8S, ROOT, env_file, run_tool, tool, yaml_document, yaml_documents

# 1.30: native gRPC probes are GA (1.27) and the preStop sleep action is on by default (1.30).
KUBERNETES_VERSIONS = ("1.30", "1.37")
SERVER_LABELS = {
    "app.kubernetes.io/name": "incident-registry",
    "app.kubernetes.io/component": "server",
}
SECRET = K8S / "secret.example.yaml"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_tool(tool("kubectl"), "kustomize", K8S)
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("k8s") / "rendered.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def resources(rendered) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for document in yaml_documents(rendered):
        found[document["kind"], document["metadata"]["name"]] = document
    return found


def by_kind(resources: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    (resource,) = [value for (k, _), value in resources.items() if k == kind]
    return resource


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def deployment(resources, name: str) -> dict[str, Any]:
    found: dict[str, Any] = resources["Deployment", name]
    return found


def container(pod: dict[str, Any], name: str, key: str = "containers") -> dict[str, Any]:
    (found,) = [c for c in pod[key] if c["name"] == name]
    result: dict[str, Any] = found
    return result


def config(resources) -> dict[str, str]:
    data: dict[str, str] = by_kind(resources, "ConfigMap")["data"]
    return data


def environment_of(resources, box: dict[str, Any]) -> dict[str, str]:
    """What a container's environment holds, the Secret's password as a stand-in value."""
    env: dict[str, str] = {}
    for source in box.get("envFrom", []):
        assert source["configMapRef"]["name"] == by_kind(resources, "ConfigMap")["metadata"]["name"]
        env.update(config(resources))
    for variable in box.get("env", []):
        env[variable["name"]] = variable.get("value", "from-secret")
    return env


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_resources_are_valid_kubernetes_objects(rendered, version):
    result = run_tool(
        tool("kubernetes-validate"), "--strict", "--no-warn", "-k", version, rendered, SECRET
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(yaml_documents(rendered)) + 1


def test_kustomization_resources(resources):
    assert set(resources) == {
        ("Namespace", "incident-registry"),
        ("ConfigMap", by_kind(resources, "ConfigMap")["metadata"]["name"]),
        ("Deployment", "incident-registry-server"),
        ("Deployment", "incident-registry-worker"),
        ("Service", "incident-registry"),
        ("PodDisruptionBudget", "incident-registry-server"),
    }
    for (kind, _), resource in resources.items():
        if kind != "Namespace":
            assert resource["metadata"]["namespace"] == "incident-registry"


def test_the_password_secret_is_documented_not_committed(resources):
    kustomization = yaml_document(K8S / "kustomization.yaml")
    assert SECRET.name not in kustomization["resources"]
    assert "secretGenerator" not in kustomization
    assert not any(kind == "Secret" for kind, _ in resources)
    secret = yaml_document(SECRET)
    assert secret["stringData"] == {"password": ""}
    assert "kubectl" in SECRET.read_text(encoding="utf-8")
    # Every container reads the password from that Secret's key.
    for name in ("incident-registry-server", "incident-registry-worker"):
        pod = deployment(resources, name)["spec"]["template"]["spec"]
        for box in pod["containers"] + pod.get("initContainers", []):
            (password,) = [v for v in box["env"] if v["name"] == "INCIDENTS_POSTGRES_PASSWORD"]
            reference = password["valueFrom"]["secretKeyRef"]
            assert reference["name"] == secret["metadata"]["name"]
            assert list(secret["stringData"]) == [reference["key"]]
            assert secret["metadata"]["namespace"] == "incident-registry"


def test_the_config_map_comes_from_registry_env_and_parses(resources):
    data = config(resources)
    assert data == env_file(K8S / "registry.env")
    settings = Settings.from_env({**data, "INCIDENTS_POSTGRES_PASSWORD": "from-secret"})
    assert settings.store == "postgres"
    assert not settings.migrate_on_start
    assert not settings.projections_in_process
    assert settings.metrics_port == 9464
    assert settings.metrics_host == "0.0.0.0"
    assert settings.listen_address.endswith(":50051")


def test_server_deployment(resources):
    server = deployment(resources, "incident-registry-server")
    spec = server["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"] == SERVER_LABELS
    pod = spec["template"]["spec"]
    assert SERVER_LABELS.items() <= spec["template"]["metadata"]["labels"].items()
    settings = Settings.from_env(environment_of(resources, container(pod, "server")))
    # The pod gets time to sleep in preStop, then to drain within the server's own grace.
    box = container(pod, "server")
    pre_stop = box["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + settings.shutdown_grace_seconds
    assert box["command"] == ["incident-registry-server"]
    ports = {port["name"]: port["containerPort"] for port in box["ports"]}
    assert ports == {"grpc": 50051, "metrics": 9464}
    assert box["livenessProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
    assert box["readinessProbe"]["grpc"] == {"port": 50051, "service": "readiness"}
    assert box["startupProbe"]["grpc"]["port"] == 50051
    migrate = container(pod, "migrate", "initContainers")
    assert migrate["command"] == ["incident-registry-server", "migrate"]
    assert migrate["image"] == box["image"]
    assert environment_of(resources, migrate) == environment_of(resources, box)


def test_worker_deployment(resources):
    worker = deployment(resources, "incident-registry-worker")
    assert worker["spec"]["replicas"] == 1
    pod = worker["spec"]["template"]["spec"]
    box = container(pod, "worker")
    assert box["command"] == ["incident-registry-worker"]
    assert {port["name"]: port["containerPort"] for port in box["ports"]} == {"metrics": 9464}
    settings = Settings.from_env(environment_of(resources, box))
    assert settings.metrics_port == 9464
    for probe in ("livenessProbe", "readinessProbe"):
        assert box[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not SERVER_LABELS.items() <= labels.items(), "the servers' Service must not select it"


@pytest.mark.parametrize("name", ["incident-registry-server", "incident-registry-worker"])
def test_pods_run_locked_down(resources, name):
    pod = deployment(resources, name)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001  # the image's USER
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    writable = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    for box in pod["containers"] + pod.get("initContainers", []):
        context = box["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"cpu", "memory"} <= set(box["resources"]["requests"])
        assert "memory" in box["resources"]["limits"]
        mounts = {mount["mountPath"]: mount["name"] for mount in box["volumeMounts"]}
        assert mounts["/tmp"] in writable
        # The image of the release: its tag is the project's version.
        assert box["image"] == f"incident-registry:{project_version()}"


def test_service_and_disruption_budget_select_the_servers(resources):
    service = resources["Service", "incident-registry"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == SERVER_LABELS
    ports = {port["name"]: (port["port"], port["targetPort"]) for port in service["spec"]["ports"]}
    assert ports == {"grpc": (50051, "grpc"), "metrics": (9464, "metrics")}
    budget = resources["PodDisruptionBudget", "incident-registry-server"]
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == SERVER_LABELS


def test_every_manifest_file_is_used_or_documented():
    kustomization = yaml_document(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    generated = {path for entry in kustomization["configMapGenerator"] for path in entry["envs"]}
    files = {path.name for path in K8S.iterdir()}
    assert files == listed | generated | {"kustomization.yaml", SECRET.name}
    for name in listed:
        with (K8S / name).open(encoding="utf-8") as file:
            assert all(document is not None for document in yaml.safe_load_all(file))
