"""A sweep file's meaning as frozen, typed specs: the sweep, its resources, scheduler and search, and one trial.

The types and their limits only; `reading` turns a sweep file into a `SweepSpec`, `expansion` turns a
`SweepSpec` into `Trial`s and `naming` gives each trial its id and name.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError, plain, to_dict

# A sweep's name: it names the MLflow experiment and the state directory. `\Z`, not `$`, which also matches before
# a final newline (`name: |` in YAML ends with one).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# Trials one sweep may expand to: every trial is built (and planned) up front, so a grid of 10 keys x 10 values
# (10^10 combinations) must be refused before expansion, not expanded until memory runs out.
MAX_TRIALS = 10_000
MAX_WORKERS = 1024  # data-parallel workers per trial: 128 nodes of 8 GPUs


@dataclass(frozen=True)
class ResourceSpec:
    """Ray resources per trial. Fractions pack trials: `gpu: 0.25` runs four on one GPU.

    `workers: N` trains each trial data-parallel on N processes (Ray Train's TorchTrainer, DDP), e.g. an ImageNet
    trial on 8 GPUs with `{workers: 8, gpu_per_worker: 1}`; `cpu` then counts per worker. optim.batch_size stays
    the global batch (the paper's 256 over 8 GPUs), split among the workers.
    """

    cpu: float = 1.0
    gpu: float | Literal["auto"] | None = None  # None: 1 when the cluster has GPUs, else 0; a GPU-less cluster
    # runs trials on CPU; auto: as many trials per GPU as the machine profile says pay off and fit in its memory
    workers: int = 1
    gpu_per_worker: float | None = None  # with workers > 1, instead of gpu; None: as gpu

    def __post_init__(self) -> None:
        if self.cpu <= 0:
            raise SpecError("cpu", self.cpu, "a positive number of CPUs (fractions allowed)")
        if self.gpu == "auto" and (self.workers > 1 or self.gpu_per_worker is not None):
            raise SpecError("gpu", self.gpu, "a number of GPUs with data-parallel workers (auto packs trials of "
                                             "one process each)")
        if isinstance(self.gpu, float) and self.gpu < 0:
            raise SpecError("gpu", self.gpu, "0 or a positive number of GPUs (fractions allowed, e.g. 0.25)")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SpecError("workers", self.workers, f"a whole number of data-parallel workers, 1 to {MAX_WORKERS}")
        if self.gpu_per_worker is not None:
            if self.gpu_per_worker < 0:
                raise SpecError("gpu_per_worker", self.gpu_per_worker, "0 or a positive number of GPUs")
            if self.gpu is not None and self.gpu != self.gpu_per_worker:
                raise SpecError("gpu_per_worker", self.gpu_per_worker,
                                f"the same as gpu ({self.gpu:g}), or leave one of them out")

    @property
    def worker_gpu(self) -> float | None:
        """GPUs per worker (per trial when workers is 1); None: decided by the cluster (and for `auto`, by the
        machine profile: running/resources.py)."""
        if self.gpu == "auto":
            return None
        return self.gpu_per_worker if self.gpu_per_worker is not None else self.gpu


# What population-based training may change in a running trial: values the optimizer takes at any step. The
# model, data and schedule length stay those of the checkpoint the trial continues from.
PBT_KEYS = ("optim.lr", "optim.momentum", "optim.weight_decay")


@dataclass(frozen=True)
class SchedulerSpec:
    """FIFO runs every trial to the end (reproductions); ASHA stops poor ones early (users' own HPO); PBT trains
    the trials as a population: every `perturbation_interval` epochs the worst quarter continue from a checkpoint
    of the best quarter with `mutations` applied (Ray Tune's PopulationBasedTraining, synchronous rounds)."""

    kind: Literal["fifo", "asha", "pbt"] = "fifo"
    metric: str = "test_error"  # a key of the per-epoch metrics; errors are fractions
    mode: Literal["min", "max"] = "min"
    grace_period: int = 1  # epochs every trial gets before ASHA may stop it
    reduction_factor: float = 3.0
    max_t: int | None = None  # epochs; None: the longest trial's epochs
    perturbation_interval: int = 4  # pbt: epochs between rounds of exploit and explore
    quantile_fraction: float = 0.25  # pbt: the share of the population that exploits, and that is exploited
    resample_probability: float = 0.25  # pbt: chance a mutated value is drawn anew rather than scaled by 0.8/1.2
    mutations: tuple[Dimension, ...] = ()  # pbt only; read from `scheduler.mutations` by the sweep's reader

    def __post_init__(self) -> None:
        if self.grace_period < 1:
            raise SpecError("grace_period", self.grace_period, "a whole number of epochs >= 1")
        if self.reduction_factor <= 1:
            raise SpecError("reduction_factor", self.reduction_factor, "a number > 1")
        if self.max_t is not None and self.max_t < 1:
            raise SpecError("max_t", self.max_t, "a whole number of epochs >= 1")
        if self.perturbation_interval < 1:
            raise SpecError("perturbation_interval", self.perturbation_interval, "a whole number of epochs >= 1")
        if not 0 < self.quantile_fraction <= 0.5:
            raise SpecError("quantile_fraction", self.quantile_fraction, "a fraction above 0 and at most 0.5")
        if not 0 <= self.resample_probability <= 1:
            raise SpecError("resample_probability", self.resample_probability, "a probability from 0 to 1")

    def to_dict(self) -> dict[str, Any]:
        """As a sweep file writes it; PBT's settings only for kind pbt (a FIFO sweep's record stays as it was)."""
        pbt = ("perturbation_interval", "quantile_fraction", "resample_probability")
        out = {k: plain(v) for k, v in dataclasses.asdict(self).items()
               if k != "mutations" and (self.kind == "pbt" or k not in pbt)}
        return {**out, "mutations": {d.key: d.to_dict() for d in self.mutations}} if self.kind == "pbt" else out


@dataclass(frozen=True)
class Dimension:
    """One key path of a searched space: `{loguniform: [low, high]}`, `{uniform: [low, high]}`, `{int: [low,
    high]}` (both ends included) or `{choice: [v1, v2, ...]}`."""

    key: str
    kind: Literal["loguniform", "uniform", "int", "choice"]
    values: tuple[Any, ...]  # (low, high), or the choices

    def to_dict(self) -> dict[str, list[Any]]:
        return {self.kind: plain(self.values)}


@dataclass(frozen=True)
class SearchSpec:
    """grid: every combination; random: `num_samples` distinct combinations drawn with `seed`; optuna: Optuna's
    TPE sampler (through Ray Tune's search API) picks `num_samples` trials from `space`, learning from `metric`."""

    kind: Literal["grid", "random", "optuna"] = "grid"
    num_samples: int | None = None  # random and optuna
    seed: int = 0
    metric: str = "test_error"  # optuna: a per-epoch metric; errors are fractions (use val_error to keep test clean)
    mode: Literal["min", "max"] = "min"
    space: tuple[Dimension, ...] = ()  # optuna only; read from `search.space` by the sweep's reader

    def __post_init__(self) -> None:
        if self.kind in ("random", "optuna") and (self.num_samples is None or self.num_samples < 1):
            raise SpecError("num_samples", self.num_samples, f"a whole number >= 1 for {self.kind} search")
        if self.kind == "grid" and self.num_samples is not None:
            raise SpecError("num_samples", self.num_samples, "no num_samples with grid search (kind: random)")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "num_samples": self.num_samples, "seed": self.seed}
        if self.kind == "optuna":
            out.update(metric=self.metric, mode=self.mode, space={d.key: d.to_dict() for d in self.space})
        return out


@dataclass(frozen=True)
class TrackingSpec:
    """What MLflow keeps beyond the metrics. models: each finished trial's `final` weights as an MLflow model;
    `best` also its checkpoint of lowest validation error (needs data.val_split); `none` no model."""

    models: Literal["final", "best", "none"] = "final"


@dataclass(frozen=True)
class Override:
    """Conditional settings: trials whose resolved values match every `when` entry get `set` applied."""

    when: tuple[tuple[str, Any], ...]
    set: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: TrialSpec = field(default_factory=TrialSpec)
    experiment: str | None = None  # MLflow experiment; None: the sweep's name
    description: str = ""
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # key path of the trial spec -> values, cartesian product
    overrides: tuple[Override, ...] = ()
    seeds: tuple[int, ...] = (0,)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    max_concurrent: int | None = None  # None: as many as resources allow
    max_failures: int = 2  # retries of a crashed trial, each from its last checkpoint
    report: tuple[str, ...] = ()  # which paper tables/figures `resnet-sweep report` rebuilds
    base_given: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # base as written

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a plain dict that the reader (`sweep_from_dict`) turns back into an equal spec."""
        return {
            "name": self.name,
            "experiment": self.experiment,
            "description": self.description,
            "base": json.loads(json.dumps(self.base_given)),
            "grid": {key: plain(values) for key, values in self.grid},
            "overrides": [{"when": plain(dict(o.when)), "set": plain(dict(o.set))} for o in self.overrides],
            "seeds": list(self.seeds),
            "resources": to_dict(self.resources),
            "scheduler": self.scheduler.to_dict(),
            "search": self.search.to_dict(),
            "tracking": to_dict(self.tracking),
            "max_concurrent": self.max_concurrent,
            "max_failures": self.max_failures,
            "report": list(self.report),
        }


# The keys a sweep file may have at its top level: SweepSpec's fields but the copy of `base` as written.
SWEEP_KEYS = tuple(f.name for f in dataclasses.fields(SweepSpec) if f.name != "base_given")


@dataclass(frozen=True)
class Trial:
    """One expanded trial: what Ray Tune runs and MLflow records as a child run."""

    id: str  # stable: hash of the resolved trial dict
    name: str  # readable, unique within the sweep
    spec: TrialSpec
    varied: tuple[tuple[str, Any], ...]  # the grid/override/seed values that set this trial apart

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "spec": self.spec.to_dict(), "varied": dict(self.varied)}

