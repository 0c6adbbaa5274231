"""How a reader following `resnet-sweep run SWEEP.yaml` moves through the project's files, measured by running it.

    cd CHECKOUT && PYTHONPATH=. python bench/trace_run.py        # sweeps/smoke.yaml: under a minute on 2 CPUs
    python bench/trace_run.py --root OTHER_CHECKOUT --sequence     # that tree's code; also print every stop

The CLI's entry point (pyproject's `[project.scripts] resnet-sweep`) runs `run` in this process on the sweep, with a
temporary RESNET_SWEEPS_HOME and a temporary SQLite MLflow store, under `sys.setprofile`. Recorded: every call into
a function whose code lives in the project's packages (resnet_core/, orchestrator/) made from a different project
file than the callee's, the caller being the nearest project frame below the callee (a call that passes through a
library, such as a dataclass's generated `__init__`, counts from the project file that made it); the CLI's entry
itself is the first. Module and class bodies that imports run are not calls a reader follows and are left out; a
generator counts once, at its first resume. Only the driver's main thread is recorded (the trials run in Ray's
processes; the thread that starts the MLflow parent run while Ray starts is not followed), from the CLI's entry until
Ray Tune's `Tuner.fit` is entered.

The callee files in order, consecutive repeats collapsed, are the reader's "stops". Figures: stops; distinct files;
climbs back up (a stop in a higher layer than the stop before it; layers from tests/test_code_layout.py's LAYERS,
lowest first); returns to a file already left (a stop in a file that appeared earlier in the sequence); distinct
moves (distinct pairs of a stop and the next: the path's shape, once however often a loop repeats it); entries per
file. Calls are counted as they happen, so a loop over the sweep's trials repeats its moves once per trial, and the
CLI's parser, built before `run` starts, calls every command's `add_arguments`. The "each call once" figures are
a reader's path instead: a call from one function to another is followed the first time the code makes it only, so
a loop over trials, or a spec class validated once per trial, is read once.

The same figures for the sweep file's reading, two ways: from the CLI's entry until the command's own `expand`
returns (the first `expand` called after `sweep_from_args`/`load_sweep` has returned; without one, until that
returns), and the calls made inside `sweep_from_args`/`load_sweep` alone. Files are identified by path and functions
by name, and nothing of the project is imported but the entry point, so the script measures a tree whose modules are
moving. Lower is better for every figure; they describe the code's shape, not its speed.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

PACKAGES = ("resnet_core", "orchestrator")
READING = ("sweep_from_args", "load_sweep")  # the functions that read a sweep file, by name
EXPAND = "expand"  # the function that turns a sweep into its trials, by name
FIT = ("Tuner.fit", os.path.join("ray", "tune", "tuner.py"))  # where recording stops: Tune takes over
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR, CO_COROUTINE, CO_ASYNC_GENERATOR
_NEWLOCALS = 0x02  # CO_NEWLOCALS: a function's code; module and class bodies lack it


def default_root() -> Path:
    """The checkout to measure: the working directory when it is one, else the one holding this script."""
    here = Path.cwd()
    if all((here / p / "__init__.py").is_file() for p in PACKAGES):
        return here
    return Path(__file__).resolve().parents[1]


def load_layers(root: Path) -> tuple[list[tuple[str, ...]], str]:
    """LAYERS from the measured tree's tests/test_code_layout.py (the one definition of the layers), and where
    they came from."""
    path = root / "tests" / "test_code_layout.py"
    spec = importlib.util.spec_from_file_location("_trace_code_layout", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.LAYERS), f"{path.relative_to(root)}"


def layer_of(rel: str, layers: list[tuple[str, ...]]) -> int:
    """The layer index of a project file (`orchestrator/specs/sweep.py`); -1 for a top-level package's own file."""
    parts = list(Path(rel).with_suffix("").parts)
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    for index, prefixes in enumerate(layers):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return -1


class Recorder:
    """The profile function: the main thread's stops, the sweep-reading boundaries, and where recording stopped."""

    def __init__(self, root: Path) -> None:
        self.prefixes = tuple(str(root / p) + os.sep for p in PACKAGES)
        self.root = str(root) + os.sep
        self.files: dict[str, str | None] = {}  # co_filename -> path relative to root, None outside the project
        self.calls: list[tuple[str, bool]] = []  # (callee file, first call along this caller -> callee edge)
        self.edges: set[tuple[CodeType | None, CodeType]] = set()
        self.seen_generators: set[FrameType] = set()  # frames kept alive so that their ids are not reused
        self.reading: tuple[int, int] | None = None  # stop indices [start, end) inside sweep_from_args/load_sweep
        self.until_expand: int | None = None  # stop index at which the command's own expand returned
        self._reading_frame: FrameType | None = None
        self._reading_start = 0
        self._expand_frame: FrameType | None = None
        self.stopped_at: str | None = None

    def project_file(self, code: CodeType) -> str | None:
        name = code.co_filename
        try:
            return self.files[name]
        except KeyError:
            path = os.path.realpath(name) if os.path.isabs(name) else name
            rel = path[len(self.root):] if path.startswith(self.prefixes) else None
            self.files[name] = rel
            return rel

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "return":
            if frame is self._reading_frame:
                self.reading, self._reading_frame = (self._reading_start, len(self.calls)), None
            elif frame is self._expand_frame:
                self.until_expand, self._expand_frame = len(self.calls), None
            return
        if event != "call" or self.stopped_at is not None:
            return
        code = frame.f_code
        if (code.co_name == "fit" and getattr(code, "co_qualname", FIT[0]) == FIT[0]
                and code.co_filename.endswith(FIT[1])):
            self.stopped_at = f"{FIT[0]} ({code.co_filename})"
            sys.setprofile(None)
            return
        rel = self.project_file(code)
        if rel is None or not code.co_flags & _NEWLOCALS:
            return
        if code.co_flags & _GENERATOR_FLAGS:
            if frame in self.seen_generators:
                return  # a resume, not a new call
            self.seen_generators.add(frame)
        caller = frame.f_back
        while caller is not None and self.project_file(caller.f_code) is None:
            caller = caller.f_back
        if self.reading is None and self._reading_frame is None and code.co_name in READING:
            self._reading_frame, self._reading_start = frame, len(self.calls)
        elif (self.reading is not None and self.until_expand is None and self._expand_frame is None
              and code.co_name == EXPAND):
            self._expand_frame = frame
        if caller is not None and self.project_file(caller.f_code) == rel:
            return  # within one file: the reader does not move
        edge = (caller.f_code if caller is not None else None, code)
        self.calls.append((rel, edge not in self.edges))
        self.edges.add(edge)


def collapsed(calls: list[tuple[str, bool]], first_only: bool) -> list[str]:
    """The stops of a run of calls: callee files in order, consecutive repeats as one. `first_only`: the reader's
    path, each call (one function calling another) followed once however often the code makes it."""
    stops: list[str] = []
    for rel, first in calls:
        if (first or not first_only) and (not stops or stops[-1] != rel):
            stops.append(rel)
    return stops


@dataclass(frozen=True)
class Figures:
    stops: int
    files: int
    climbs: int  # stops in a higher layer than the stop before
    returns: int  # stops in a file that appeared earlier
    moves: int  # distinct (file, next file) pairs: the path's shape without its loops' repetitions
    entries: Counter


def figures(stops: list[str], layers: list[tuple[str, ...]]) -> Figures:
    climbs = sum(1 for a, b in zip(stops, stops[1:]) if layer_of(b, layers) > layer_of(a, layers))
    returns = sum(1 for i, f in enumerate(stops) if f in stops[:i])
    return Figures(len(stops), len(set(stops)), climbs, returns, len(set(zip(stops, stops[1:]))), Counter(stops))


def entry_point(root: Path) -> tuple[str, str]:
    """(module, function) of the `resnet-sweep` script in the measured tree's pyproject.toml."""
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["resnet-sweep"].partition(":")
    return module, function


def header(root: Path) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    git = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %cd", "--date=short"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", *PACKAGES],
                           capture_output=True, text=True)
    commit = (git.stdout.strip() or "not a git checkout") + (" + uncommitted changes" if dirty.stdout.strip() else "")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return [f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.system()}; "
            f"{platform.platform()}; load average {load}",
            f"versions: python {platform.python_version()}, ray {v('ray')}, mlflow {v('mlflow')}, torch {v('torch')}",
            f"code: {root} ({commit})"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="checkout whose code runs (default: the working directory if it is one, else this "
                             "script's)")
    parser.add_argument("--sweep", default="sweeps/smoke.yaml", help="sweep file, relative to --root")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--top", type=int, default=8, help="files shown per segment, most entered first")
    parser.add_argument("--sequence", action="store_true", help="also print every stop with its layer")
    args = parser.parse_args(argv)
    root = (args.root or default_root()).resolve()
    sys.path.insert(0, str(root))  # ahead of an editable install that points at another checkout
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    layers, layers_from = load_layers(root)
    module_name, function_name = entry_point(root)
    entry = getattr(importlib.import_module(module_name), function_name)
    imported = Path(sys.modules[module_name].__file__).resolve()
    if not imported.is_relative_to(root):
        parser.error(f"{module_name} was imported from {imported}, not from {root}: put {root} first on PYTHONPATH")
    sweep = (root / args.sweep).resolve()
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"trace_run: a reader following `resnet-sweep run {args.sweep}`, {now:%Y-%m-%d %H:%M UTC}")
    print("\n".join(header(root)))
    print(f"entry: {module_name}:{function_name} from {imported}; layers from {layers_from}", flush=True)

    recorder = Recorder(root)
    with tempfile.TemporaryDirectory(prefix="trace_run-") as tmp:
        os.environ["RESNET_SWEEPS_HOME"] = str(Path(tmp) / "home")
        cli_args = ["run", str(sweep), "--tracking-uri", f"sqlite:///{tmp}/mlruns.db"]
        cli_args += ["--num-cpus", str(args.num_cpus)] if args.num_cpus else []
        cwd = os.getcwd()
        os.chdir(tmp)  # anything the run writes beside it lands in the temporary directory
        started = time.monotonic()
        try:
            sys.setprofile(recorder)
            try:
                code = entry(cli_args)
            finally:
                sys.setprofile(None)
        finally:
            os.chdir(cwd)
            if "ray" in sys.modules:
                import ray

                ray.shutdown()
        elapsed = time.monotonic() - started

    calls = recorder.calls
    until = recorder.until_expand if recorder.until_expand is not None else (recorder.reading or (0, None))[1]
    parts = [("CLI entry to Tuner.fit", calls),
             ("sweep file to trials (CLI entry until expand returns)", calls[:until] if until is not None else None),
             ("inside sweep_from_args/load_sweep", calls[slice(*recorder.reading)] if recorder.reading else None)]
    segments = [(f"{name}{', each call once' if first_only else ''}",
                 collapsed(part, first_only) if part is not None else None)
                for first_only in (False, True) for name, part in parts]
    stops = segments[len(parts)][1]  # the reader's path of the whole run
    print(f"\nrun: exit {code} in {elapsed:.1f} s; recording stopped at "
          f"{recorder.stopped_at or 'the end (no Tuner.fit was entered)'}")
    width = max(len(name) for name, _ in segments)
    print(f"\n{'segment':{width}}  stops  files  climbs back up  returns to a file already left  distinct moves")
    results = {}
    for name, seq in segments:
        if seq is None:
            print(f"{name:{width}}  (not found: no {'/'.join(READING)} or {EXPAND} call)")
            continue
        results[name] = figures(seq, layers)
        r = results[name]
        print(f"{name:{width}}  {r.stops:5}  {r.files:5}  {r.climbs:14}  {r.returns:30}  {r.moves:14}")
    for name, r in results.items():
        print(f"\nentries per file, {name} ({r.files} files):")
        for rel, count in r.entries.most_common(args.top):
            print(f"  {count:4}  L{layer_of(rel, layers)}  {rel}")
        if r.files > args.top:
            rest = sum(c for _, c in r.entries.most_common()[args.top:])
            print(f"  ... {r.files - args.top} more files with {rest} entries")
    if args.sequence:
        print("\nthe reader's path, each call once (layer, file; ^ a climb back up, * a return to a file already left):")
        for i, rel in enumerate(stops):
            up = i and layer_of(rel, layers) > layer_of(stops[i - 1], layers)
            again = rel in stops[:i]
            print(f"  {i + 1:4}  L{layer_of(rel, layers)} {'^' if up else ' '}{'*' if again else ' '} {rel}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
