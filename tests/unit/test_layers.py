"""The layers of app/, checked on its import graph (read from the source, not imported).

- No cycles among app's modules.
- The core (app.services, app.domain) imports no adapter, API, real-time or
  composition module: those sit at the edge and are handed in.
- Only the composition root constructs the services.
- Nothing outside tests/ imports tests/: bench/, tools/ and deploy/ share
  helpers with the tests through testkit/, which imports neither tests/ nor bench/.
Imports under `if TYPE_CHECKING:` are annotations, not dependencies, and are skipped.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
CORE = ("app.services", "app.domain")
EDGE = ("app.adapters", "app.api", "app.realtime", "app.bootstrap", "app.handlers")


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """App modules `path` imports at run time (top level or inside functions)."""
    tree = dict(_trees())[path]
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - child.level + 1]
                                    + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in child.names] + [base]
            else:
                visit(child)
                continue
            for name in names:
                # The longest app module the name refers to (a module or a name in one).
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != me:
                    found.add(name)
    visit(tree)
    return found


@lru_cache(maxsize=1)
def _trees() -> tuple[tuple[Path, ast.AST], ...]:
    return tuple((p, ast.parse(p.read_text(), str(p))) for p in sorted(APP.rglob("*.py")))


def graph() -> dict[str, set[str]]:
    paths = [p for p, _ in _trees()]
    modules = {module_name(p) for p in paths}
    # A package's __init__ is imported with any of its modules; it is not an edge of its own.
    return {module_name(p): {m for m in imports_of(p, modules)
                             if not module_name(p).startswith(m + ".")} for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_the_import_graph_of_app_has_no_cycle():
    assert cycles(graph()) == []


def test_the_core_imports_no_adapter_api_or_realtime_module():
    offences = [f"{module} imports {target}" for module, targets in graph().items()
                if module.startswith(CORE) for target in sorted(targets) if target.startswith(EDGE)]
    assert offences == []


def test_the_checker_sees_a_cycle_and_a_layer_breach():
    """The checks above can fail: the same functions find planted faults."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "app.adapters.influx_text" in edges["app.adapters.influx"]   # edges are real


SERVICE_CLASSES = ("DataStore", "AlertBook", "IngestPipeline", "ControlService", "DecisionEngine",
                   "DemandForecaster", "ThresholdMonitor", "Monitor", "LiveViews", "MessageBus",
                   "Broadcaster", "Simulator", "MqttLink", "InfluxHistory", "MemoryHistory")


@pytest.mark.parametrize("name", SERVICE_CLASSES)
def test_services_are_constructed_only_in_the_bootstrap(name):
    builders = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
                builders.append(module_name(path))
    assert set(builders) <= {"app.bootstrap"}, f"{name} built in {sorted(set(builders))}"


ROOT = APP.parent
# Benchmarks, tools and the app never load the test suite (its fixtures, pytest).
NOT_TESTS = ("app", "bench", "testkit", "tools")
# A dotted module name standing alone in a string: `python -m tests.services`.
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.\w+)+")


def modules_named(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every absolute import, and every string that is a module
    name (what `python -m` and importlib are given)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.append((node.lineno, node.value))
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def references(folder: str, package: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} {module}"
            for path in sorted((ROOT / folder).rglob("*.py"))
            for line, module in modules_named(ast.parse(path.read_text(), str(path))) if within(module, package)]


@pytest.mark.parametrize("folder", NOT_TESTS)
def test_nothing_outside_tests_imports_tests(folder):
    assert (ROOT / folder).is_dir()
    assert references(folder, "tests") == []


def test_testkit_imports_no_benchmark():
    assert references("testkit", "bench") == []


def test_bench_shares_helpers_through_testkit():
    """The check reads bench's real imports: bench does use testkit."""
    assert any(within(module, "testkit") for path in (ROOT / "bench").rglob("*.py")
               for _, module in modules_named(ast.parse(path.read_text())))


def test_the_tests_import_check_sees_every_form():
    planted = ast.parse("from tests.conftest import free_port\nimport tests.services as s\n"
                        "def f():\n    from tests import helpers\n"
                        "cmd = ['python', '-m', 'tests.services', 'bridge']\n"
                        "from testkit.ports import free_port\nnote = 'tests are fine'\n")
    hits = sorted((line, module) for line, module in modules_named(planted) if within(module, "tests"))
    assert hits == [(1, "tests.conftest"), (2, "tests.services"), (4, "tests"), (5, "tests.services")]
