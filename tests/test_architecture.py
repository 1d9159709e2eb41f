"""The one-way flow of ARCHITECTURE.md, read from the imports of every module: each package imports only
packages of its own layer or below, and the packages that work from stored data never import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lmbench"
# Layers, lowest first: a module may import its own layer and the ones before it (ARCHITECTURE.md).
LAYERS = [
    {"errors", "options", "config"},
    {"results"},
    {"measure", "model"},
    {"analysis"},
    {"render"},
    {"kernels"},
    {"profilers", "studies"},
    {"api", "cli", "cli_options", "__init__", "__main__"},
]
TORCH_FREE = {"errors", "config", "results", "analysis", "kernels", "render"}


def _unit(module: Path) -> str:
    parts = module.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _layer(unit: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit in units)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    for module in _modules():
        _layer(_unit(module))


def test_nothing_imports_upward() -> None:
    upward = []
    for module in _modules():
        own = _layer(_unit(module))
        for name in _imports(module):
            parts = name.split(".")
            if parts[0] == "lmbench" and len(parts) > 1 and any(parts[1] in units for units in LAYERS):
                if _layer(parts[1]) > own:
                    upward.append(f"{module.relative_to(PACKAGE)} imports {name}")
    assert upward == []


def test_data_packages_never_import_torch() -> None:
    offending = [f"{m.relative_to(PACKAGE)} imports {n}" for m in _modules() if _unit(m) in TORCH_FREE
                 for n in _imports(m) if n.split(".")[0] in ("torch", "nvtx", "lmbench.model")]
    assert offending == []


def test_data_packages_load_without_torch() -> None:
    """Transitively: importing every torch-free module leaves torch unloaded (one fresh interpreter)."""
    names = [".".join(("lmbench", *m.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
             for m in _modules() if _unit(m) in TORCH_FREE]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({n!r})\n" for n in names) + \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'nvtx')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
