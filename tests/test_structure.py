"""The package's shape: layers import only downward, components register where they are defined,
and a registry is complete whichever module is imported first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from longtail.errors import ConfigError
from longtail.registry import Registry

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "longtail"
# Each part of longtail may import its own rank and lower ones only. Rank 0 are the single
# modules every layer may use (longtail.io, longtail.checkpoints, longtail.registry, ...).
RANKS = {"data": 1, "losses": 1, "models": 2, "methods": 3, "engine": 4, "analysis": 5, "cli": 6}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names, relative imports resolved), wherever the
    import statement sits: inside functions too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import bbn`
    return found


def rank(module: str) -> int | None:
    """The layer of a longtail module; None outside longtail."""
    parts = module.split(".")
    if parts[0] != "longtail":
        return None
    return RANKS.get(parts[1], 0) if len(parts) > 1 else 0


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_walk_sees_every_layer():
    names = {module_name(path).split(".")[1] for path in MODULES if "." in module_name(path)}
    assert set(RANKS) <= names
    assert "longtail.engine.trainer" in {module_name(path) for path in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_layers_import_only_downward(path):
    own = rank(module_name(path))
    upward = sorted(module for module in imported_modules(path)
                    if rank(module) is not None and rank(module) > own)
    assert not upward, f"{module_name(path)} (layer {own}) imports higher layers: {upward}"
    assert not {module for module in imported_modules(path) if module.split(".")[0] in ("tests", "conftest")}


def test_the_import_walk_resolves_relative_imports():
    bbn = imported_modules(PACKAGE / "methods" / "bbn.py")
    assert {"longtail.models", "longtail.methods.base", "longtail.losses"} <= bbn
    assert "longtail.errors" in imported_modules(PACKAGE / "io.py")
    assert rank("longtail.engine.trainer") == 4 and rank("longtail.io") == 0 and rank("torch") is None


def test_the_lower_layers_never_import_engine_analysis_or_cli():
    lower = [path for path in MODULES if module_name(path).split(".")[1:2] in (["data"], ["models"], ["losses"],
                                                                               ["methods"])]
    assert len(lower) > 20
    for path in lower:
        forbidden = {m for m in imported_modules(path)
                     if m.startswith(("longtail.engine", "longtail.analysis", "longtail.cli"))}
        assert not forbidden, (module_name(path), forbidden)


def test_no_import_order_suppressions_in_src():
    for path in MODULES:
        text = path.read_text()
        assert "E402" not in text and "I001" not in text, path


def _registration_calls(tree: ast.AST) -> list[ast.Call]:
    decorators = {id(decorator) for node in ast.walk(tree)
                  if isinstance(node, ast.FunctionDef | ast.ClassDef) for decorator in node.decorator_list}
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("register", "register_family") and id(node) not in decorators]


def test_components_register_only_with_a_decorator_on_their_definition():
    assert len(_registration_calls(ast.parse("MODELS.register('x')(f)"))) == 1  # what is refused
    assert not _registration_calls(ast.parse("@MODELS.register('x')\ndef f(): pass"))
    for path in MODULES:
        calls = _registration_calls(ast.parse(path.read_text()))
        assert not calls, f"{module_name(path)}:{calls[0].lineno if calls else ''} registers outside a decorator"


# Imported first in a fresh interpreter, any one module of a package gives the complete registries.
FIRST_IMPORTS = {
    "longtail.models.moco": "from longtail.models.registry import MODELS as R; "
                            "need = {'resnet32', 'bbn_resnet32', 'moco_resnet50', 'frozen_features'}",
    "longtail.losses.focal": "from longtail.losses.registry import LOSSES as R; "
                             "need = {'ce', 'focal', 'ldam', 'logit_adjusted', 'balanced_softmax'}",
    "longtail.methods.standard": "from longtail.methods.base import METHODS as R; "
                                 "need = {'standard', 'bbn', 'mixup', 'paco', 'supcon', 'multitask'}",
}


def test_registries_are_complete_whichever_module_is_imported_first():
    checks = [f"import {module}; {lookup}; missing = need - set(R.names()); assert not missing, missing"
              for module, lookup in FIRST_IMPORTS.items()]
    for check in checks:
        subprocess.run([sys.executable, "-c", check], check=True, capture_output=True)


def test_a_family_resolves_members_registered_after_it():
    members, things = Registry("backbone"), Registry("thing")

    @things.register_family("big_", members)
    def big(member: str, size: int = 1) -> tuple:
        return ("big", member, size)

    @members.register("a")
    def a():
        return "a"

    assert things.build({"name": "big_a", "size": 3}) == ("big", "a", 3)
    assert things.names() == ["big_a"]
    with pytest.raises(ConfigError, match=r"choose one of: big_<backbone>; <backbone> is one of: a"):
        things.build("big_b")
    with pytest.raises(ConfigError, match="has no option 'member'"):
        things.build({"name": "big_a", "member": "b"})  # the member comes from the name alone


def test_a_family_over_fixed_names_lists_them_and_a_clash_is_an_internal_error():
    things = Registry("thing")

    @things.register_family("", ("x", "y"))
    def letter(name: str) -> str:
        return name * 2

    assert [things.build(name) for name in things.names()] == ["xx", "yy"]
    things.register("x")(lambda: "x")
    with pytest.raises(KeyError, match="registered twice"):
        things.get("x")
