"""The Helm chart, rendered by Helm's own Go SDK (no helm binary, no cluster).

Layers, as in prometheus-community's charts: lint; one render per
``ci/*-values.yaml`` scenario, every object validated strictly against the
Kubernetes 1.30 OpenAPI schemas; assertions on the rendered objects; the
values schema rejecting typos. The in-cluster layer is the chart's own
``helm test`` hook (templates/tests/test-connection.yaml).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import os
import subprocess
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip(
    "helm_python", reason="helm-python-sdk (Helm's Go SDK via ctypes) is not installed"
)
pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")

import helm_python
import jsonschema
import kubernetes_validate

from connector.config import SECRET_SOURCES, Settings, load_settings
from tests.support import helm
from tests.support.helm import Manifest, of_kind, one

ROOT = helm.ROOT
BAD_VALUES = ROOT / "tests" / "fixtures" / "helm" / "bad-values.yaml"
SCHEMA = json.loads((helm.CHART_DIR / "values.schema.json").read_text())
CI_FILES = helm.ci_values_files()
FULLNAME = f"{helm.RELEASE}-sequence-kafka-connector"


def scenario(name: str) -> dict[str, Any]:
    return helm.load_values(helm.CI_DIR / f"{name}-values.yaml")


def container(m: Manifest) -> dict[str, Any]:
    spec = m.obj["spec"]["template"]["spec"] if m.kind != "Pod" else m.obj["spec"]
    containers = spec["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def pod_spec(m: Manifest) -> dict[str, Any]:
    return dict(m.obj["spec"]["template"]["spec"])


def env_refs(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}


def checksum(values: dict[str, Any], key: str = "checksum/config") -> str:
    deployment = one(helm.render(values), "Deployment")
    return str(deployment.obj["spec"]["template"]["metadata"]["annotations"][key])


def with_(values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of values with one dotted key set (keys may not contain dots)."""
    out = copy.deepcopy(values)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    """Each ci scenario rendered once (plus the chart defaults as 'chart-defaults')."""
    out = {path.name.removesuffix("-values.yaml"): helm.render(helm.load_values(path))
           for path in CI_FILES}
    out["chart-defaults"] = helm.render({})
    return out


# --- lint and Kubernetes schemas ------------------------------------------------


def test_ci_scenarios_exist() -> None:
    names = {p.name for p in CI_FILES}
    assert {"default-values.yaml", "sasl-ssl-existing-secret-values.yaml",
            "monitoring-values.yaml"} <= names


@pytest.mark.parametrize("values_file", [None, *CI_FILES], ids=lambda p: p.name if p else "chart")
def test_lint_is_clean(values_file: Path | None) -> None:
    values = helm.load_values(values_file) if values_file else None
    report = helm.lint(values)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warning or error
    assert problems == []


@pytest.mark.parametrize("values_file", CI_FILES, ids=lambda p: p.name)
def test_ci_values_pass_the_values_schema(values_file: Path) -> None:
    values = helm.load_values(values_file)
    helm.validate_schema(values)  # Helm's own validator
    jsonschema.Draft7Validator(SCHEMA).validate(helm.merged(values))  # and an independent one


def test_every_rendered_object_is_valid_kubernetes_1_30(
    rendered: dict[str, list[Manifest]],
) -> None:
    checked = 0
    for name, manifests in rendered.items():
        for m in manifests:
            if (m.obj["apiVersion"], m.kind) in helm.CRD_KINDS:
                continue  # ServiceMonitor: checked in test_monitoring_objects
            try:
                helm.validate_kubernetes(m)
            except (kubernetes_validate.ValidationError,
                    kubernetes_validate.SchemaNotFoundError) as exc:  # name the object
                pytest.fail(f"{name}: {m.template}: {m.kind}/{m.name}: {exc}")
            checked += 1
    assert checked >= 3 * 8


def test_names_fit_63_chars_and_selectors_stay_immutable() -> None:
    release = "a-release-name-that-is-quite-long-for-sure-ok-ok-x"  # 50 chars
    manifests = helm.render({}, release=release)
    for m in manifests:
        assert len(m.name) <= 63, m.name
        for value in (m.obj["metadata"].get("labels") or {}).values():
            assert len(str(value)) <= 63, value
    selector = one(manifests, "Deployment").obj["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "sequence-kafka-connector",
                        "app.kubernetes.io/instance": release}
    # a new image or chart version must not touch the immutable selector
    upgraded = one(helm.render({"image": {"tag": "9.9.9"}}, release=release), "Deployment")
    assert upgraded.obj["spec"]["selector"]["matchLabels"] == selector
    assert upgraded.obj["metadata"]["labels"]["app.kubernetes.io/version"] == "9.9.9"


# --- the Deployment ------------------------------------------------------------


def test_image_tag_falls_back_to_app_version() -> None:
    app_version = yaml.safe_load((helm.CHART_DIR / "Chart.yaml").read_text())["appVersion"]
    assert app_version == "0.1.0"
    # deploy/image.sh tags the image with the package version: the chart's
    # default tag must be a tag that script produces
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == app_version

    def image(values: dict[str, Any]) -> str:
        return str(container(one(helm.render(values), "Deployment"))["image"])

    repo = "ghcr.io/sequence-kafka-connector/sequence-kafka-connector"
    assert image({}) == f"{repo}:0.1.0"
    assert image({"image": {"tag": "1.2.3"}}) == f"{repo}:1.2.3"
    digest = "sha256:" + "ab" * 32
    assert image({"image": {"digest": digest}}) == f"{repo}@{digest}"


def test_probes_ports_and_command(rendered: dict[str, list[Manifest]]) -> None:
    deployment = one(rendered["default"], "Deployment")
    c = container(deployment)
    assert c["args"] == ["run", "--config", "/etc/sequence-connector/config.yaml"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9108, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert {"periodSeconds", "timeoutSeconds", "failureThreshold"} <= set(c[probe])
    # /healthz answers from the first moment of start-up (connector/app.py opens
    # the port before schemas, topics and dedupe), so the startup probe only
    # covers the interpreter start: a short budget, and never /readyz, which
    # would kill a pod that is merely waiting for Kafka
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] <= 60
    service = one(rendered["default"], "Service")
    assert service.obj["spec"]["ports"] == [
        {"name": "metrics", "port": 9108, "targetPort": "metrics", "protocol": "TCP"}]
    assert service.obj["spec"]["selector"] == deployment.obj["spec"]["selector"]["matchLabels"]
    assert deployment.obj["spec"]["replicas"] == 1


def test_metrics_port_follows_the_config() -> None:
    manifests = helm.render({"config": {"observe": {"metrics_port": 9200}}})
    c = container(one(manifests, "Deployment"))
    assert c["ports"][0]["containerPort"] == 9200
    assert yaml.safe_load(one(manifests, "ConfigMap").obj["data"]["config.yaml"])[
        "observe"]["metrics_port"] == 9200


def test_grace_period_outlasts_the_drain(rendered: dict[str, list[Manifest]]) -> None:
    spec = pod_spec(one(rendered["default"], "Deployment"))
    assert spec["terminationGracePeriodSeconds"] > 30
    values = {"config": {"connector": {"drain_timeout_s": 90.0}},
              "terminationGracePeriodSeconds": 60}
    with pytest.raises(helm_python.HelmError, match="drain_timeout_s"):
        helm.render(values)
    helm.render(with_(values, "terminationGracePeriodSeconds", 120))


def test_recreate_strategy_leaves_out_rolling_update() -> None:
    """The API server rejects rollingUpdate with type Recreate; Helm merges the
    chart's default rollingUpdate into `--set strategy.type=Recreate`."""
    recreate = one(helm.render({"strategy": {"type": "Recreate"}}), "Deployment")
    assert recreate.obj["spec"]["strategy"] == {"type": "Recreate"}
    helm.validate_kubernetes(recreate)
    rolling = one(helm.render({}), "Deployment")
    assert rolling.obj["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    tuned = one(helm.render({"strategy": {"rollingUpdate": {"maxSurge": "50%"}}}), "Deployment")
    assert tuned.obj["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "50%",
                                                              "maxUnavailable": 0}


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_hardened_security_context(rendered: dict[str, list[Manifest]], kind: str) -> None:
    hook = None if kind == "Deployment" else "pre-upgrade"
    m = one(rendered["default"], kind, hook)
    pod = pod_spec(m)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(m)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec(m)["automountServiceAccountToken"] is False
    # a read-only root still needs a writable /tmp
    mounts = {v["name"]: v["mountPath"] for v in container(m)["volumeMounts"]}
    assert mounts["tmp"] == "/tmp"  # noqa: S108 - the chart's mount point, not a file we use


def test_resources_set(rendered: dict[str, list[Manifest]]) -> None:
    resources = container(one(rendered["default"], "Deployment"))["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


# --- config and credentials ------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "sasl-ssl-existing-secret", "monitoring",
                                  "chart-defaults"])
def test_rendered_config_is_accepted_by_the_connector(
    rendered: dict[str, list[Manifest]], name: str, tmp_path: Path,
) -> None:
    """The ConfigMap's config.yaml goes through connector.config.load_settings
    unchanged (with no env): so the chart cannot drift from config.py."""
    manifests = rendered[name]
    text = one(manifests, "ConfigMap").obj["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    settings = load_settings(path, env={})
    assert settings.observe.metrics_port == 9108
    assert settings.sequence.api_key is None  # never from the file
    # the pre-upgrade hook checks the same config the new pods will run
    assert one(manifests, "ConfigMap", "pre-upgrade").obj["data"]["config.yaml"] == text


def test_values_config_block_mirrors_config_py() -> None:
    """Every non-secret key of every settings section is in the schema's config
    block, and nothing else is; the secrets are not."""
    config_schema = SCHEMA["properties"]["config"]["properties"]
    hints = typing.get_type_hints(Settings)
    assert set(config_schema) == set(hints)
    for section, cls in hints.items():
        keys = {f.name for f in dataclasses.fields(cls)} - {
            k for (s, k) in SECRET_SOURCES if s == section}
        assert set(config_schema[section]["properties"]) == keys, section


def test_chart_created_secret(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["default"]
    secret = one(manifests, "Secret")
    assert secret.name == FULLNAME
    assert base64.b64decode(secret.obj["data"]["sequence-api-key"]) == b"seq_test_key"
    assert set(secret.obj["data"]) == {"sequence-api-key"}  # unset credentials are left out
    refs = env_refs(container(one(manifests, "Deployment")))
    assert refs["SEQUENCE_API_KEY"] == {"name": FULLNAME, "key": "sequence-api-key"}
    assert refs["KAFKA_SASL_PASSWORD"] == {"name": FULLNAME, "key": "kafka-sasl-password",
                                           "optional": True}
    assert refs["SCHEMA_REGISTRY_BASIC_AUTH"]["key"] == "schema-registry-basic-auth"
    for cm in of_kind(manifests, "ConfigMap") + of_kind(manifests, "ConfigMap", "pre-upgrade"):
        assert "seq_test_key" not in json.dumps(cm.obj)


def test_existing_secret_and_tls(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["sasl-ssl-existing-secret"]
    assert of_kind(manifests, "Secret") == []
    assert of_kind(manifests, "Secret", "pre-upgrade") == []
    expected = {
        "SEQUENCE_API_KEY": {"name": "sequence-connector-credentials", "key": "api-key"},
        "KAFKA_SASL_PASSWORD": {"name": "sequence-connector-credentials",
                                "key": "sasl-password", "optional": True},
        "SCHEMA_REGISTRY_BASIC_AUTH": {"name": "sequence-connector-credentials",
                                       "key": "registry-user-info", "optional": True},
    }
    deployment = one(manifests, "Deployment")
    job = one(manifests, "Job", "pre-upgrade")
    assert env_refs(container(deployment)) == expected
    assert env_refs(container(job)) == expected
    annotations = deployment.obj["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in annotations
    # TLS material: a read-only Secret volume where ssl.ca.location points
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "kafka-ca"
    mount = next(v for v in container(deployment)["volumeMounts"] if v["name"] == "tls")
    assert mount == {"name": "tls", "mountPath": "/etc/sequence-connector/tls",
                     "readOnly": True}
    config = yaml.safe_load(one(manifests, "ConfigMap").obj["data"]["config.yaml"])
    assert config["kafka"]["producer"]["ssl.ca.location"].startswith(mount["mountPath"])
    assert {"name": "SEQCONN__OBSERVE__LOG_LEVEL", "value": "INFO"} in container(deployment)["env"]


def test_tls_needs_a_secret_name() -> None:
    with pytest.raises(helm_python.HelmError, match="tls.secretName"):
        helm.render({"tls": {"enabled": True}})


def test_checksum_config_rolls_pods_only_on_config_change() -> None:
    base = scenario("default")
    before = checksum(base)
    assert len(before) == 64
    assert checksum(with_(base, "config.kafka.partitions", 12)) != before
    assert checksum(with_(base, "config.sequence.stream_topics", ["fills"])) != before
    assert checksum(with_(base, "resources.limits.memory", "2Gi")) == before
    secret_before = checksum(base, "checksum/secret")
    rotated = with_(base, "secrets.sequenceApiKey", "seq_live_rotated")
    assert checksum(rotated, "checksum/secret") != secret_before
    assert checksum(rotated) == before


# --- hooks ----------------------------------------------------------------------


def test_pre_upgrade_schema_check_hook(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["default"]
    job = one(manifests, "Job", "pre-upgrade")
    c = container(job)
    assert c["args"] == ["schemas", "check", "--config", "/etc/sequence-connector/config.yaml"]
    assert c["image"] == container(one(manifests, "Deployment"))["image"]
    assert job.obj["spec"]["backoffLimit"] == 0
    assert pod_spec(job)["restartPolicy"] == "Never"
    # the hook's own config and secret are created before the Job
    hook_cm = one(manifests, "ConfigMap", "pre-upgrade")
    hook_secret = one(manifests, "Secret", "pre-upgrade")
    for m in (hook_cm, hook_secret):
        assert int(m.annotations["helm.sh/hook-weight"]) < int(
            job.annotations["helm.sh/hook-weight"])
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert volumes["config"]["configMap"]["name"] == hook_cm.name
    assert env_refs(c)["SEQUENCE_API_KEY"]["name"] == hook_secret.name
    # the hook's pods must not be picked up by the metrics Service
    selector = one(manifests, "Service").obj["spec"]["selector"]
    labels = job.obj["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= labels.items()
    assert of_kind(helm.render({"schemaCheck": {"enabled": False}}), "Job", "pre-upgrade") == []


def test_hook_copies_go_with_the_hook_and_a_failed_job_stays() -> None:
    """Helm never deletes hook resources on uninstall: the credential copy must
    carry hook-failed as well as hook-succeeded; the Job keeps only
    hook-succeeded and has no TTL, so a failed check stays for `kubectl logs`."""
    manifests = helm.render(scenario("default"))

    def policies(m: Manifest) -> set[str]:
        return set(m.annotations["helm.sh/hook-delete-policy"].split(","))

    for kind in ("Secret", "ConfigMap"):
        copy_ = one(manifests, kind, "pre-upgrade")
        assert policies(copy_) == {"before-hook-creation", "hook-succeeded", "hook-failed"}
    job = one(manifests, "Job", "pre-upgrade")
    assert policies(job) == {"before-hook-creation", "hook-succeeded"}
    assert "ttlSecondsAfterFinished" not in job.obj["spec"]
    timed = one(helm.render(with_(scenario("default"), "schemaCheck.ttlSecondsAfterFinished",
                                  3600)), "Job", "pre-upgrade")
    assert timed.obj["spec"]["ttlSecondsAfterFinished"] == 3600
    helm.validate_kubernetes(timed)


def test_helm_test_pod_fetches_healthz(rendered: dict[str, list[Manifest]]) -> None:
    pod = one(rendered["default"], "Pod", "test")
    command = " ".join(container(pod)["command"])
    assert command.startswith("wget")
    assert f"http://{FULLNAME}.{helm.NAMESPACE}.svc:9108/healthz" in command
    assert pod.obj["spec"]["securityContext"]["runAsNonRoot"] is True


# --- optional objects -------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "sasl-ssl-existing-secret", "chart-defaults"])
def test_optional_objects_off_by_default(rendered: dict[str, list[Manifest]], name: str) -> None:
    kinds = {m.kind for m in rendered[name]}
    assert not kinds & {"ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"}


def test_monitoring_objects(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["monitoring"]
    selector = one(manifests, "Deployment").obj["spec"]["selector"]["matchLabels"]

    sm = one(manifests, "ServiceMonitor")  # a CRD: checked by hand, not by kubernetes-validate
    assert sm.obj["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm.obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm.obj["spec"]["selector"]["matchLabels"] == selector
    assert sm.obj["spec"]["namespaceSelector"] == {"matchNames": [helm.NAMESPACE]}
    endpoint = sm.obj["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics",
                                                                          "15s")
    assert set(sm.obj["spec"]) == {"namespaceSelector", "selector", "endpoints"}

    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb.obj["spec"]["selector"]["matchLabels"] == selector
    assert pdb.obj["spec"]["maxUnavailable"] == 1  # one replica: must not block drains
    assert "minAvailable" not in pdb.obj["spec"]

    np = one(manifests, "NetworkPolicy")
    assert np.obj["spec"]["podSelector"]["matchLabels"] == selector
    assert np.obj["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ingress = np.obj["spec"]["ingress"][0]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    test_peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": helm.RELEASE,
                                                 "app.kubernetes.io/component": "test"}}}
    assert test_peer in ingress["from"]
    egress_ports = [p["port"] for rule in np.obj["spec"]["egress"] for p in rule["ports"]]
    assert {443, 9092, 8081, 53} <= set(egress_ports)


def oldest_kubernetes() -> str:
    """The lowest version Chart.yaml's kubeVersion admits, e.g. ">=1.25.0-0"."""
    constraint = yaml.safe_load((helm.CHART_DIR / "Chart.yaml").read_text())["kubeVersion"]
    assert constraint.startswith(">=") and constraint.endswith("-0"), constraint
    return str(constraint.removeprefix(">=").removesuffix("-0"))


@pytest.mark.parametrize("kube", ["1.27.0", "1.30.0", "1.31.0"])
def test_pdb_eviction_policy_renders_from_kubernetes_1_27(kube: str) -> None:
    pdb = one(helm.render(scenario("monitoring"), kube_version=kube), "PodDisruptionBudget")
    assert pdb.obj["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    helm.validate_kubernetes(pdb, kube)


@pytest.mark.parametrize("kube", ["1.25.0", "1.26.0"])
def test_pdb_eviction_policy_is_refused_before_kubernetes_1_27(kube: str) -> None:
    with pytest.raises(helm_python.HelmError, match=r"unhealthyPodEvictionPolicy needs "
                                                     r"Kubernetes >= 1\.27"):
        helm.render(scenario("monitoring"), kube_version=kube)
    values = with_(scenario("monitoring"), "podDisruptionBudget.unhealthyPodEvictionPolicy", "")
    pdb = one(helm.render(values, kube_version=kube), "PodDisruptionBudget")
    assert "unhealthyPodEvictionPolicy" not in pdb.obj["spec"]
    helm.validate_kubernetes(pdb, kube)


def test_every_object_is_valid_on_the_oldest_kubernetes_the_chart_admits() -> None:
    """kubeVersion stays at 1.25 because the chart needs nothing newer unless
    the (optional) PDB eviction policy is asked for."""
    kube = oldest_kubernetes()
    assert kube == "1.25.0"
    checked = 0
    for path in CI_FILES:
        values = with_(helm.load_values(path), "podDisruptionBudget.unhealthyPodEvictionPolicy",
                       "")
        for m in helm.render(values, kube_version=kube):
            if (m.obj["apiVersion"], m.kind) not in helm.CRD_KINDS:
                helm.validate_kubernetes(m, kube)
                checked += 1
    assert checked >= 3 * 8


def test_network_policy_without_egress_rules_leaves_egress_open() -> None:
    np = one(helm.render({"networkPolicy": {"enabled": True}}), "NetworkPolicy")
    assert np.obj["spec"]["policyTypes"] == ["Ingress"]
    assert "from" not in np.obj["spec"]["ingress"][0]


def test_notes_render() -> None:
    text = helm.notes({})
    assert "WARNING: no Sequence API key" in text
    text = helm.notes({**scenario("default"), "replicaCount": 2})
    assert "no Sequence API key" not in text
    assert "replicaCount is 2" in text


def test_image_script_tags_the_image_the_chart_defaults_to() -> None:
    """deploy/image.sh is what publishes the chart's default image; its dry run
    prints the build (and push) it would run, with the chart's default tag."""
    expected = str(container(one(helm.render({}), "Deployment"))["image"])
    out = subprocess.run(["bash", str(ROOT / "deploy" / "image.sh"), "--dry-run", "--push"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"-t {expected} " in out
    assert f"docker push {expected}" in out
    custom = subprocess.run(["bash", str(ROOT / "deploy" / "image.sh"), "--dry-run"],
                            cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**os.environ, "IMAGE": "registry.example/seq"}).stdout
    assert "-t registry.example/seq:0.1.0 " in custom
    assert "docker push" not in custom


# --- the values schema rejects typos ------------------------------------------------


BAD_CASES: dict[str, dict[str, Any]] = {
    "top-level typo": {"replicas": 2},
    "nested typo": {"serviceMonitor": {"enable": True}},
    "config key typo": {"config": {"kafka": {"bootstrap_server": "k:9092"}}},
    "unknown config section": {"config": {"observability": {}}},
    "secret in config": {"config": {"sequence": {"api_key": "seq_live_x"}}},
    "password in producer": {"config": {"kafka": {"producer": {"sasl.password": "x"}}}},
    "probe typo": {"livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"},
                                     "periodSecond": 10}},
    "wrong type": {"replicaCount": "1"},
    "bad log format": {"config": {"observe": {"log_format": "xml"}}},
}


def test_bad_values_file_is_rejected() -> None:
    values = helm.load_values(BAD_VALUES)
    with pytest.raises(helm_python.HelmValuesError) as excinfo:
        helm.validate_schema(values)
    message = str(excinfo.value)
    assert "replicas" in message or "bootstrap_server" in message
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(helm.merged(values)))
    report = helm.lint(values)
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_schema_rejects(case: str) -> None:
    values = BAD_CASES[case]
    with pytest.raises(helm_python.HelmValuesError):
        helm.validate_schema(values)
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(helm.merged(values))), case
