"""The layers import only downwards: the Django-free library (distill) knows nothing of Django,
the web app or the workers; the web app does not reach into the workers; product code never
imports the development scaffolding (devtools) or the tests.

Every module's AST is walked, so imports inside functions (and under TYPE_CHECKING) count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("experiments", "workers", "skyboard", "distill")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def violations(packages: tuple[str, ...], forbidden: tuple[str, ...],
               exclude: tuple[str, ...] = ()) -> list[str]:
    out = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(rel.startswith(prefix) for prefix in exclude):
                continue
            for line, name in imported_modules(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    out.append(f"{rel}:{line} imports {name}")
    return out


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "distill" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(
        "def f():\n    from django.conf import settings\n    from .. import workers\n"
        "    from ..other import x\n    import experiments.models as m\n"
    )
    names = [name for _, name in imported_modules(pkg / "mod.py", root=tmp_path)]
    assert names == ["django.conf", "distill", "distill.other", "experiments.models"]


@pytest.mark.parametrize(
    ("packages", "forbidden", "exclude"),
    [
        pytest.param(("distill",), ("django", "experiments", "workers", "devtools", "tests"), (),
                     id="distill-is-django-free"),
        # Management commands may execute a run inline through workers.runner.
        pytest.param(("experiments",), ("workers",), ("experiments/management/",),
                     id="web-does-not-import-workers"),
        pytest.param(PRODUCT, ("devtools", "tests"), (), id="product-does-not-import-scaffolding"),
    ],
)
def test_layers_import_only_downwards(packages, forbidden, exclude):
    found = violations(packages, forbidden, exclude)
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_test_modules_share_code_only_through_tests_support():
    # A builder or fixture two test files need lives in tests/support or conftest.py: a test
    # module importing another one runs (and couples to) that module's tests.
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{line} imports {name}"
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        for line, name in imported_modules(path)
        if name.startswith("tests.test_")
    ]
    assert not found, "test modules importing test modules:\n" + "\n".join(found)


FIRST_PARTY = ("experiments", "workers", "distill", "skyboard", "devtools")


def test_first_party_imports_inside_functions_say_why():
    # Imports inside functions hide a module's dependencies and are the usual way to dodge an
    # import cycle. Where one is needed for another reason (a heavy SDK, a job module that must
    # fail the run rather than the worker's start), a comment on it or just above says so.
    found = []
    for package in ("experiments", "workers", "skyboard"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            lines = path.read_text().splitlines()
            tree = ast.parse("\n".join(lines), filename=str(path))
            for func in ast.walk(tree):
                if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(func):
                    if isinstance(node, ast.Import):
                        names = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom):
                        names = ["." if node.level else node.module or ""]
                    else:
                        continue
                    local = [n for n in names
                             if n == "." or n.split(".")[0] in FIRST_PARTY]
                    i = node.lineno - 1
                    if local and "#" not in lines[i] and "#" not in lines[i - 1]:
                        found.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}")
    assert not found, "function-level imports without a reason:\n" + "\n".join(sorted(set(found)))
