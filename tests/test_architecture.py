"""The shape of the package holds: the floors' import contracts, no private names reached
across modules, no import cycles."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "ocibuild"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under `root`, with the contracts in `root`/pyproject.toml."""
    tool = Path(sys.executable).with_name("lint-imports")
    assert tool.exists(), f"{tool} is missing: pip install -e '.[test]' installs import-linter"
    env = {**os.environ, "PYTHONPATH": str(root)}  # ahead of the editable install's path
    return subprocess.run(
        [str(tool), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_contracts_are_kept() -> None:
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_upward_import_breaks_the_floors(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    digest = tmp_path / PACKAGE / "oci" / "_digest.py"
    # Function-level, as the lazy imports are: the contract must see those too.
    digest.write_text(
        digest.read_text()
        + "\n\ndef _reaches_up() -> None:\n    from ocibuild.pipeline import _run  # noqa: F401\n"
    )
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "ocibuild.oci is not allowed to import ocibuild.pipeline" in proc.stdout
    assert "ocibuild.oci._digest -> ocibuild.pipeline._run" in proc.stdout


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, name: str) -> bool:
    where = root.joinpath(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def private_name_imports(root: Path, package: str) -> Iterator[str]:
    """`from M import _x` anywhere under root/package where `_x` is not itself a module."""
    for path in sorted((root / package).rglob("*.py")):
        here = _module_name(root, path)
        parent = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = parent.split(".")[: len(parent.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                name = alias.name
                private = name.startswith("_") and not name.startswith("__")
                if private and not _is_module(root, f"{source}.{name}"):
                    yield f"{path.relative_to(root)}:{node.lineno}: from {source} import {name}"


def test_no_private_name_is_imported_from_another_module() -> None:
    offenders = list(private_name_imports(REPO, PACKAGE))
    assert not offenders, "give these a public name in their module:\n" + "\n".join(offenders)


def test_the_private_name_scan_finds_offenders(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ._inner import Public\nfrom . import _inner\n")
    (pkg / "_inner.py").write_text("Public = 1\n_hidden = 2\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text(
        "def lazy():\n    from .._inner import _hidden\n    from pkg._inner import __doc__\n"
    )
    assert list(private_name_imports(tmp_path, "pkg")) == [
        "pkg/sub/mod.py:2: from pkg._inner import _hidden"
    ]


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, round and round."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(groups)


def test_the_cycle_finder_finds_cycles() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=importer, imported=imported)
    graph.add_import(importer="p.e", imported="p.f")
    graph.add_import(importer="p.f", imported="p.e")
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"], ["p.e", "p.f"]]


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    cycles = strongly_connected(graph)
    lines = []
    for group in cycles:
        lines.append(" <-> ".join(group))
        for importer in group:
            for imported in group:
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    lines.append(
                        f"    {importer}:{detail['line_number']}: {detail['line_contents']}"
                    )
    assert not cycles, "modules that import each other:\n" + "\n".join(lines)


def check_public_imports(*dirs: Path) -> subprocess.CompletedProcess[str]:
    script = REPO / "scripts" / "check-public-imports.py"
    return subprocess.run(
        [sys.executable, str(script), *map(str, dirs)], capture_output=True, text=True, check=False
    )


def test_the_gcp_plugin_imports_only_the_public_api() -> None:
    proc = check_public_imports(REPO / "plugins" / "ocibuild-gcp" / "src")
    assert (proc.returncode, proc.stderr) == (0, "")


def test_the_public_import_check_finds_private_imports(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text(
        "from ocibuild.pipeline import PodSpec\nimport ocibuild.registry\n"
    )
    (tmp_path / "bad.py").write_text(
        "from ocibuild.pipeline._errors import DeployError\n"
        "import ocibuild.transports._table\n"
        "from ocibuild import _public\n"
    )
    proc = check_public_imports(tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "2", "3"]
    assert all(line.startswith(str(tmp_path / "bad.py")) for line in lines)
