"""Render and check the Helm chart without a helm binary or a cluster.

``helm-python-sdk`` (import name ``helm_python``) binds Helm's own Go SDK
(v4) through a bundled shared library, so rendering, linting and schema
validation here are Helm's, not a re-implementation; nothing touches the
network. Rendered objects are checked against the Kubernetes OpenAPI schemas
shipped inside ``kubernetes-validate`` (strict: unknown fields fail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "sequence-kafka-connector"
CI_DIR = CHART_DIR / "ci"
KUBE_VERSION = "1.30.0"
RELEASE = "seq"
NAMESPACE = "streaming"

# CRDs have no schema in kubernetes-validate; the tests check these by hand.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


@dataclass(frozen=True)
class Manifest:
    template: str  # e.g. "sequence-kafka-connector/templates/deployment.yaml"
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.obj["metadata"].get("annotations") or {})


def load_values(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text()) or {}
    assert isinstance(loaded, dict), f"{path}: values must be a mapping"
    return loaded


def ci_values_files() -> list[Path]:
    return sorted(CI_DIR.glob("*-values.yaml"))


def render(
    values: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    kube_version: str = KUBE_VERSION,
) -> list[Manifest]:
    """``helm template --kube-version`` equivalent: every object of every
    template, hooks and tests included (NOTES.txt and empty templates dropped),
    with ``.Capabilities.KubeVersion`` set to ``kube_version`` (the version the
    objects are then validated against, not Helm's built-in default)."""
    import helm_python as helm
    from helm_python import _native

    opts = {"name": release, "namespace": namespace, "is_install": True,
            "kube_version": f"v{kube_version}"}
    with helm.Chart.load(CHART_DIR) as chart:
        # Chart.render() (helm-python-sdk 0.2) has no kube_version keyword, but
        # the native helm_render it wraps reads one from the same options object
        rendered: dict[str, str] = json.loads(_native.call_string(
            "helm_render", chart._raw(),  # noqa: SLF001 - the handle render() would pass
            json.dumps(values or {}), json.dumps(opts)))
    manifests: list[Manifest] = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                manifests.append(Manifest(template, doc))
    return manifests


def notes(values: dict[str, Any] | None = None) -> str:
    import helm_python as helm

    with helm.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return next(text for name, text in rendered.items() if name.endswith("NOTES.txt"))


def validate_schema(values: dict[str, Any]) -> None:
    """Helm's own values.schema.json check (what install/upgrade run first)."""
    import helm_python as helm

    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(values)


def merged(values: dict[str, Any]) -> dict[str, Any]:
    """The chart defaults coalesced with ``values``, as an install would use."""
    import helm_python as helm

    with helm.Chart.load(CHART_DIR) as chart:
        return chart.merge_values(values)


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """``helm lint --strict --kube-version``; findings come back as data."""
    import helm_python as helm

    return helm.lint(CHART_DIR, values, strict=True, kube_version=f"v{KUBE_VERSION}")


def validate_kubernetes(manifest: Manifest, kube_version: str = KUBE_VERSION) -> None:
    """Strict OpenAPI validation against Kubernetes ``kube_version``."""
    import kubernetes_validate

    kubernetes_validate.validate(manifest.obj, kube_version, strict=True)


def of_kind(manifests: list[Manifest], kind: str, hook: str | None = None) -> list[Manifest]:
    """Objects of ``kind``; release objects by default, else those of one hook
    (``"pre-upgrade"``, ``"test"``)."""
    return [m for m in manifests
            if m.kind == kind and m.annotations.get("helm.sh/hook") == hook]


def one(manifests: list[Manifest], kind: str, hook: str | None = None) -> Manifest:
    found = of_kind(manifests, kind, hook)
    assert len(found) == 1, f"expected one {kind} (hook {hook}), got {[m.name for m in found]}"
    return found[0]
