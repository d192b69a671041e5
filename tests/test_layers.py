"""The package's shape: one top-level name, layers that never point up, no import cycles.

Read from the source with ``ast`` (imports inside functions count too), so a
lazy import cannot hide an upward dependency or a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Bottom up; an import may point down or sideways (same rank), never up.
RANK = {"online": 0, "client": 1, "server": 2, "simulations": 3, "deploy": 3, "benchmarks": 3}


def modules() -> dict[str, Path]:
    out = {"fedotl": ROOT / "__init__.py"}
    for layer in RANK:
        for path in sorted((ROOT / layer).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("fedotl", *parts[:-1])) if parts[-1] == "__init__" else ".".join(("fedotl", *parts))
            out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The fedotl modules that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fedotl"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("fedotl"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_layers_never_point_up():
    upward = []
    for mod, deps in graph().items():
        here = layer(mod)
        for dep in deps:
            there = layer(dep)
            if here is None:
                upward.append(f"{mod} -> {dep} (the package root imports nothing of ours)")
            elif there is not None and RANK[there] > RANK[here]:
                upward.append(f"{mod} -> {dep}")
    assert upward == [], "upward imports:\n" + "\n".join(sorted(upward))


def test_client_imports_neither_server_nor_simulations_and_online_nothing_else():
    g = graph()
    # None is the package root (its version): it imports nothing of ours, so any layer may read it
    for mod, deps in g.items():
        if layer(mod) == "online":
            assert {layer(d) for d in deps} <= {"online"}, mod
        if layer(mod) == "client":
            assert {layer(d) for d in deps} <= {"online", "client", None}, mod


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_real_imports():
    """Guard the guard: known edges are found, or the tests above would pass on nothing."""
    g = graph()
    assert "fedotl.client.store" in g["fedotl.client.data"]
    assert "fedotl.online.base" in g["fedotl.online.pa"]  # a relative import
    assert "fedotl.client.config" in g["fedotl.server.run"]
    assert "fedotl.simulations.cli.simulate" in g["fedotl.simulations.cli"]


def test_pyproject_lists_every_package_and_only_fedotl():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = sorted(m for m, p in modules().items() if p.name == "__init__.py")
    assert sorted(listed) == packages
    assert {p.split(".")[0] for p in listed} == {"fedotl"}


def test_only_fedotl_is_importable_from_outside_the_repository(tmp_path):
    code = "import importlib.util as u; print([n for n in ('server', 'client', 'online', 'simulations', 'deploy', 'benchmarks', 'fedotl.server') if u.find_spec(n)])"
    (tmp_path / "server.py").write_text("raise SystemExit('the wrong server')\n")  # a user's own server.py must not break us
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['server', 'fedotl.server']"  # 'server' is the user's file, nothing of ours
    done = subprocess.run([sys.executable, "-c", "import fedotl.client.client_app"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
