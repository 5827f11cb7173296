"""The layering of docs/architecture.md holds: every import points down (or stays in its package).

Imports inside functions count too: a lazy import is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vs_sr"

# Lowest first; a module may import from its own package or from a lower floor. Two packages on
# one floor do not import each other. Keep in step with docs/architecture.md.
FLOORS: list[set[str]] = [
    {"errors", "log", "paths", "atomic", "devices", "children", "extras", "progress"},
    {"models"},
    {"backends"},
    {"filter"},
    {"<api>"},  # vs_sr/__init__.py: Upscale and list_models
    {"media"},
    {"quality", "batch", "serving", "report"},
    {"training", "studio", "bench"},
    {"cli"},
]
GROUND = FLOORS[0]


def floor(unit: str) -> int:
    return next(level for level, units in enumerate(FLOORS) if unit in units)


def unit_of(module: str) -> str:
    """The layer unit of a dotted module name: its top-level package, a ground module, or the API."""
    parts = module.split(".")
    return "<api>" if len(parts) == 1 else parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every vs_sr import in the file, lazy ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "vs_sr":  # `from .. import extras` names modules; `from .. import __version__` the API
                found += [(node.lineno, f"vs_sr.{alias.name}" if is_module(alias.name) else "vs_sr")
                          for alias in node.names]
            elif target.startswith("vs_sr."):
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("vs_sr")]
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_floor() -> None:
    units = {unit_of(module_name(path)) for path in sources()}
    placed = set().union(*FLOORS)
    assert units <= placed, f"not in docs/architecture.md's floors: {sorted(units - placed)}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    here = unit_of(module_name(path))
    upward = []
    for line, target in imports(path):
        there = unit_of(target)
        if there == here:
            continue
        if here in GROUND and there in GROUND:
            continue  # the ground floor's small modules may use each other (extras -> errors)
        if floor(there) >= floor(here):
            upward.append(f"line {line}: {target} ({there} is not below {here})")
    assert not upward, "\n".join(upward)


def exists(module: str) -> bool:
    """Whether a dotted vs_sr module (or a name imported from one) is there: a lazy import that
    points one level short fails only when its function first runs."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_name_modules_that_exist(path: Path) -> None:
    missing = [f"line {line}: {target}" for line, target in imports(path) if not exists(target)]
    assert not missing, "\n".join(missing)


def test_functions_stay_short() -> None:
    """No function over 80 lines: a longer one is several jobs that want names of their own."""
    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "\n".join(long)
