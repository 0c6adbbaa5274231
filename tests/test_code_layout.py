"""The code's shape along the data's path (STYLE.md 9, 13): no import cycles in `orchestrator` or `resnet_core`,
lower layers never import higher ones, `resnet_core` knows nothing of Ray, MLflow or the orchestrator, and no
module uses another module's private names. Read from the source with `ast`, so imports inside functions (the
lazy ones that keep the CLI quick) count as much as those at the top of a file."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("resnet_core", "orchestrator")

# Lower layers first. A module imports modules of its own layer or lower ones, never higher; the packages that
# share a layer (running trials, building reports) do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("resnet_core",),
    ("orchestrator.errors", "orchestrator.contract"),
    ("orchestrator.specs",),
    ("orchestrator.records",),
    ("orchestrator.tracking",),
    ("orchestrator.running", "orchestrator.report"),
    ("orchestrator.commands",),
    ("orchestrator.cli",),
]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module `name` (or its nearest enclosing package) names; None outside the project."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int, str]]:
    """(imported name as written, line, project module it resolves to or '') for every import in `module`."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, _resolve(a.name) or "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((full, node.lineno, full if full in MODULES else _resolve(base) or ""))
    return out


GRAPH = {m: {t for _, _, t in _imports(m) if t and t != m} for m in MODULES}


def _layer(module: str) -> tuple[int, str]:
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return i, prefix
    return -1, module  # the top-level package itself


def test_no_import_cycles():
    """Tarjan's strongly connected components of the import graph: each must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == [], f"import cycles: {cycles}"


def test_every_module_has_a_layer_and_arrows_point_down_the_path():
    wrong = []
    for module, targets in GRAPH.items():
        if module in PACKAGES:
            continue
        layer, own = _layer(module)
        assert layer >= 0, f"{module} belongs to no layer of LAYERS: give it one"
        for target in targets:
            other, theirs = _layer(target)
            if other > layer or (other == layer and theirs != own):
                wrong.append(f"{module} -> {target}")
    assert wrong == [], "imports against the data's path: " + ", ".join(sorted(wrong))


def test_resnet_core_knows_nothing_of_ray_mlflow_or_the_orchestrator():
    wrong = [f"{m}:{line} imports {name}" for m in MODULES if m.startswith("resnet_core")
             for name, line, _ in _imports(m) if name.split(".")[0] in ("ray", "mlflow", "orchestrator")]
    assert wrong == []


def test_no_module_uses_another_modules_private_names():
    wrong = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = set()  # local names bound to other project modules
        for name, line, target in _imports(module):
            leaf = name.rpartition(".")[2]
            if target and target != module and leaf.startswith("_") and not leaf.startswith("__"):
                wrong.append(f"{module}:{line} imports {name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                aliases |= {a.asname or a.name for a in node.names
                            if f"{node.module}.{a.name}" in MODULES and f"{node.module}.{a.name}" != module}
            elif isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if a.asname and a.name in MODULES}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                wrong.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert wrong == []


def test_every_package_says_what_it_is_for():
    """A line under each package's name: what it does on the data's path."""
    for module, path in MODULES.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert doc.strip() and len(doc.splitlines()[0]) <= 120, f"{module}: no one-line docstring"


def test_the_reports_sweep_files_may_name_are_the_reports_built():
    """Sweep specs check `report:` against the contract's list without importing the report package."""
    from orchestrator.contract import REPORT_NAMES
    from orchestrator.report.build import REPORTS

    assert REPORTS == REPORT_NAMES
