"""The house rules, checked on the source with `ast`: imports run one way (no cycle between modules,
no import of a subpackage that the importer's `__init__` docstring does not allow), and every
module and function stays readable in one sitting (docs/architecture.md)."""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dotbias"
TOP = ("cli", "options", "commands", "dotbias")   # above every subpackage (dotbias: the package
# __init__, which defers Ctrl-C from its first line in the `dotbias` command): may import any of them
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 250, 40


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "bench").glob("*.py")]
    return {module_name(p): p for p in sorted(files)}


@functools.cache
def _parsed(path: Path, stamp: tuple[int, int]) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def parse(path: Path) -> ast.Module:
    """`path`'s syntax tree, parsed once per version of the file (its mtime and size): several
    rules walk every module (about 700 parses of 100 files before)."""
    st = path.stat()
    return _parsed(path, (st.st_mtime_ns, st.st_size))


def imports_of(path: Path, name: str) -> set[str]:
    """Every dotbias module `path` imports, at any depth (a function's imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}     # `from pkg import module`
    return found


def graph() -> dict[str, set[str]]:
    src = sources()
    return {name: {m for m in imports_of(path, name) if m in src and m != name}
            for name, path in src.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        state[n] = 2
        stack.pop()
        return None
    return next((c for n in sorted(edges) if n not in state and (c := visit(n))), None)


def allowed() -> dict[str, set[str]]:
    """Subpackage -> the subpackages its `__init__` docstring says it may import."""
    out = {}
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(parse(init)) or ""
        m = re.search(r"^May import: (.*)\.$", doc, re.M)
        assert m, f"{init}: its docstring must end with 'May import: a, b.' (or 'nothing of dotbias.')"
        out[init.parent.name] = {s.strip() for s in m.group(1).split(",")} - {"nothing of dotbias"}
    return out


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "dotbias" and len(parts) > 2 or (
        len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_of_resolves_relative_and_from_package_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from . import sib\nfrom ..io import files\nimport dotbias.models.zoo\n")
    got = imports_of(f, "dotbias.report.m")
    assert {"dotbias.report.sib", "dotbias.io.files", "dotbias.models.zoo"} <= got


def test_no_import_cycle_in_dotbias_or_bench():
    assert find_cycle(graph()) is None, f"import cycle: {' -> '.join(find_cycle(graph()))}"


def test_every_import_runs_down_the_declared_order():
    rules, wrong = allowed(), []
    for name, targets in graph().items():
        here = subpackage(name)
        for t in targets:
            there = subpackage(t)
            if there is None or there == here:
                continue
            if here is None and name.split(".")[-1] not in TOP and name.startswith("dotbias"):
                wrong.append(f"{name} -> {t}: only {', '.join(TOP)} sit above the subpackages")
            elif here is not None and there not in rules[here]:
                wrong.append(f"{name} -> {t}: {here} may import {sorted(rules[here]) or 'nothing'}")
    assert not wrong, "upward or undeclared imports:\n" + "\n".join(sorted(wrong))


def test_bench_folder_is_only_the_plugin_and_benchmarks():
    """bench/ loads the plugin from the package: no module of its own that others import."""
    assert not [n for n, t in graph().items() for m in t if m.startswith("bench.")]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_modules_and_functions_read_in_one_sitting(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path}: {len(text.splitlines())} lines"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines, line {n.lineno})"
            for n in ast.walk(parse(path)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_report_commands_import_neither_torch_nor_fastai(report_child):
    """`dotbias report RUN.json` and `dotbias report --versions` only turn JSON into markdown and
    PNGs: the group definitions they read live in a torch-free module. Both run by `cli.main` in
    one fresh interpreter (conftest's report_child, on the committed reference)."""
    folder, out = report_child
    assert out.stdout.splitlines()[-1] == "0 0 []", out.stdout[-500:] + out.stderr[-2000:]
    assert (folder / "report" / "REPORT.md").exists()
    assert (folder / "versions" / "CROSS_VERSION.md").exists()


# The one documented kind of import inside a function (docs/architecture.md): a heavy library
# deferred so that a command that does not need it does not pay for it (torch, fastai, pandas,
# numpy, tqdm, pytest-benchmark), and the subcommand modules the torch-free entry points (the CLI,
# the plug-in loader) reach only when that subcommand runs.
DEFERRED_LIBRARIES = ("torch", "fastai", "pandas", "numpy", "tqdm", "pytest_benchmark")
LAZY_ENTRY_POINTS = ("dotbias.cli", "dotbias.commands", "dotbias.compare.cli", "dotbias.models.plugins")


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(parse(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    out += [(sub.lineno, a.name) for a in sub.names]
                elif isinstance(sub, ast.ImportFrom):
                    out.append((sub.lineno, sub.module or ""))
    return out


@pytest.mark.parametrize("name", sorted(sources()))
def test_imports_inside_functions_are_only_the_documented_kind(name):
    path = sources()[name]
    bad = [f"line {line}: {module}" for line, module in function_level_imports(path)
           if module.split(".")[0] not in DEFERRED_LIBRARIES
           and not (name in LAZY_ENTRY_POINTS and module.startswith("dotbias."))]
    assert not bad, f"{path}: imports inside functions (move them to the top): {', '.join(bad)}"


def test_the_import_check_sees_an_import_inside_a_function(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\ndef g():\n    import json\n    from torch import nn\n")
    assert function_level_imports(f) == [(3, "json"), (4, "torch")]


# Module-level state: none in dotbias/ (docs/architecture.md, "What stays per process"). What a
# run needs (its registry, baseline, progress setting, Ctrl-C record, compiled functions) lives on
# the object that runs it or on pytest's `config.stash`; module constants are read-only.
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter", "bytearray"}
MUTATORS = {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "add",
            "discard", "remove", "sort", "reverse", "appendleft", "__setitem__", "__delitem__"}
CACHES = {"cache", "lru_cache", "cached_property"}


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """The module's own statements, those under a top-level `if`/`try` included."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop(0)
        out.append(node)
        if isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", []) + [
                s for h in getattr(node, "handlers", []) for s in h.body]
    return out


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", None)) \
        in MUTABLE_CALLS


def module_bindings(path: Path) -> tuple[set[str], set[str]]:
    """(names bound at module level to a mutable container, classes defined at module level)."""
    containers, classes = set(), set()
    for node in _top_level(parse(path)):
        if isinstance(node, ast.ClassDef):
            classes.add(node.name)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if targets and _is_mutable(node.value):
            containers |= {t.id for t in targets if isinstance(t, ast.Name)}
    return containers, classes


def _owner(node: ast.expr) -> str | None:
    """The name whose object `node` reaches first: NAME, NAME[...], module.NAME -> NAME."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def module_state(path: Path, name: str, watched: dict[str, str], classes: dict[str, str]) -> set[str]:
    """The module-level state `path` keeps or changes, as 'dotbias.module.NAME': a `global`
    statement, a cached function, a mutable container mutated anywhere (`watched`: its name ->
    the module binding it), a class attribute assigned (`classes`: class -> module)."""
    found = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Global):
            found |= {f"{name}.{n}" for n in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
            if any(getattr(d, "id", getattr(d, "attr", None)) in CACHES for d in decorators):
                found.add(f"{name}.{node.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in MUTATORS and (owner := _owner(node.func.value)) in watched:
            found.add(f"{watched[owner]}.{owner}")
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target] if \
            isinstance(node, ast.AugAssign) else []
        for t in targets:
            if isinstance(t, ast.Subscript) and (owner := _owner(t)) in watched:
                found.add(f"{watched[owner]}.{owner}")
            elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in classes:
                found.add(f"{classes[t.value.id]}.{t.value.id}")
    return found


def package_state(paths: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the module-level state it keeps or changes (`module_state`), over `paths`."""
    watched, classes = {}, {}
    for name, path in paths.items():
        own, cls = module_bindings(path)
        watched |= {n: name for n in own}
        classes |= {c: name for c in cls}
    return {name: module_state(path, name, watched, classes) for name, path in paths.items()}


def test_no_module_level_mutable_state():
    src = {n: p for n, p in sources().items() if n.startswith("dotbias")}
    found = sorted(f"{s} (in {n})" for n, states in package_state(src).items() for s in states)
    assert not found, ("module-level mutable state (keep it on the object that runs the command or "
                       "on config.stash): " + ", ".join(found))


def test_the_state_check_sees_a_planted_global_a_cache_a_registry_and_a_flag(tmp_path):
    (tmp_path / "m.py").write_text(
        "import functools\nSEEN = {}\nLIMITS = [1, 2]\nCHOSEN = None\n\n\nclass Flag:\n    on = False\n\n\n"
        "def remember(k):\n    SEEN[k] = 1\n    return LIMITS[0]\n\n\n"
        "def choose(n):\n    global CHOSEN\n    CHOSEN = n\n    Flag.on = True\n\n\n"
        "@functools.lru_cache\ndef build():\n    return [1]\n")
    (tmp_path / "n.py").write_text("from m import SEEN\n\n\ndef more():\n    SEEN.update(a=1)\n")
    found = package_state({"m": tmp_path / "m.py", "n": tmp_path / "n.py"})
    assert found == {"m": {"m.SEEN", "m.CHOSEN", "m.Flag", "m.build"}, "n": {"m.SEEN"}}
