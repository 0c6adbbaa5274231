"""The code's shape along the data's path: no import cycles in `orchestrator` or `resnet_core`,
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


# What a command may use of the layers that run and record sweeps: commands parse arguments and print, so they
# reach launches, records and MLflow only through these (a launch's API, submitting a Ray Job, read-only views).
COMMANDS_MAY_USE = {
    "orchestrator.running.launch": "launch and resume a sweep",
    "orchestrator.running.jobs": "submit a sweep to a Ray cluster as a Ray Job",
    "orchestrator.running.kuberay": "write the KubeRay RayJob that runs a sweep on Kubernetes",
    "orchestrator.running.views": "read-only views of the sweeps this machine knows",
    "orchestrator.running.progress": "the trial table as printed",
    "orchestrator.running.doctor": "the machine's and the cluster's checks that `doctor` prints",
    "orchestrator.tracking.ui": "links into MLflow's UI",
    "orchestrator.tracking.uris": "tracking URIs as they are shown",
    "orchestrator.tracking.registry": "a sweep's best model into the Model Registry",
}


def test_commands_use_only_the_launch_api_and_read_only_views():
    wrong = [f"{m}:{line} imports {name}" for m in MODULES if m.startswith("orchestrator.commands")
             for name, line, target in _imports(m)
             if target.startswith(("orchestrator.running", "orchestrator.records", "orchestrator.tracking"))
             and target not in COMMANDS_MAY_USE]
    assert wrong == [], "commands doing a layer's work (move it below, or into the launch API): " + ", ".join(wrong)


def test_one_launch_builds_the_tuner():
    """A launch and a resume share one tuner factory: only the launch module builds Tune's Tuner."""
    builders = [m for m in MODULES if "orchestrator.running.tune_runner" in GRAPH[m]
                and any(name.endswith(".build_tuner") for name, _, _ in _imports(m))]
    assert builders == ["orchestrator.running.launch"]


def test_the_reports_sweep_files_may_name_are_the_reports_built():
    """Sweep specs check `report:` against the contract's list without importing the report package."""
    from orchestrator.contract import REPORT_NAMES
    from orchestrator.report.build import REPORTS

    assert REPORTS == REPORT_NAMES


def _string_constants(module: str) -> list[tuple[int, str]]:
    tree = ast.parse(MODULES[module].read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_names_runs_are_written_and_read_by_come_from_the_contract():
    """A tag or metric name that the MLflow writer and the report reader share is spelled once, in contract.py;
    a copy elsewhere would drift from it."""
    from orchestrator import contract

    shared = {contract.TAG, contract.PARENT, contract.SYSTEM, *(v for k, v in vars(contract).items()
                                                             if k.isupper() and isinstance(v, str)
                                                             and v.startswith((contract.TAG, "mlflow.")))}
    wrong = [f"{m}:{line} spells {text!r}" for m in MODULES if m.startswith("orchestrator") and m != "orchestrator.contract"
             for line, text in _string_constants(m) if text in shared or text.startswith(contract.TAG)]
    assert wrong == [], "import these names from orchestrator.contract: " + ", ".join(wrong)


def test_the_terminal_trial_states_are_listed_once():
    """Which trial states mean "trains no further" is one tuple, contract.TERMINAL_STATES."""
    from orchestrator.contract import TERMINAL_STATES

    wrong = []
    for module, path in MODULES.items():
        if module == "orchestrator.contract":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.Set, ast.List)) and all(
                    isinstance(e, ast.Constant) for e in node.elts) and {e.value for e in node.elts} == set(
                    TERMINAL_STATES):
                wrong.append(f"{module}:{node.lineno}")
    assert wrong == [], "use contract.TERMINAL_STATES at " + ", ".join(wrong)
