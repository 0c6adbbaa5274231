"""`resnet-sweep report` on a real SQLite MLflow store written here with MLflow's own client, in the layout of
the tracking contract: a parent run per launch, nested child runs with the trial's flattened spec as params,
per-epoch metrics with step = iteration (a trial's result is each curve's last point, which the report reads) and
a layer_responses.json artifact."""
from __future__ import annotations

import csv
import time

import pytest

from orchestrator.cli import main
from orchestrator.report.rows import read_sweep
from resnet_core.accounting import model_cost
from resnet_core.spec import TrialSpec
from resnet_core.specio import flatten

pytestmark = pytest.mark.slow  # a real SQLite store: a few seconds of schema migrations

SWEEP = "report-test-sweep"
# (model, seed, state, final train error, final test error); iterations 400, epochs of 100 iterations
TRIALS = [({"depth": 20, "residual": False}, 0, "finished", 0.060, 0.100),
          ({"depth": 32, "residual": False}, 0, "finished", 0.090, 0.120),
          ({"depth": 20}, 0, "finished", 0.040, 0.0900),
          ({"depth": 20}, 1, "finished", 0.045, 0.0880),
          ({"depth": 32}, 0, "finished", 0.030, 0.0800),
          ({"depth": 56}, 0, "diverged", None, None),
          ({"depth": 110}, 0, "running", None, None)]


def _log_trial(client, experiment_id: str, parent_id: str, model: dict, seed: int, state: str,
               train: float | None, test: float | None, trial_id: str | None = None) -> None:
    from mlflow.entities import Metric, Param

    spec = TrialSpec.from_dict({"model": {"family": "cifar", **model}, "optim": {"iterations": 400},
                                "seed": seed})
    cost = model_cost(spec.model, 10)
    name = f"{spec.model.name}-{spec.model.shortcut}-seed{seed}"
    run = client.create_run(experiment_id, run_name=name, tags={
        "mlflow.parentRunId": parent_id, "resnet_sweeps.role": "trial", "resnet_sweeps.trial_id": trial_id or name,
        "resnet_sweeps.state": state})
    run_id = run.info.run_id
    params = flatten(spec.to_dict())
    if spec.model.residual:  # plain nets leave the counts to the reader, which then counts them itself
        params.update({"model.params": cost.params, "model.macs": cost.macs})
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    epochs = 4 if state == "finished" else 2
    now = int(time.time() * 1000)
    metrics = []
    for epoch in range(1, epochs + 1):
        step = 100 * epoch  # step = iteration
        for key, final in (("train_error", train), ("test_error", test)):
            value = (final if final is not None else 0.5) + 0.4 * (epochs - epoch) / epochs
            metrics.append(Metric(key, value, now, step))
    if state == "finished":  # its last epoch's errors (step 400) are the final ones: no final_ copy of them
        layers = cost.response_layers
        client.log_dict(run_id, {"layers": [f"layer{i}" for i in range(layers)],
                                 "std": [1.0 + 0.1 * i * (1 if model.get("residual", True) else 3)
                                         for i in range(layers)]}, "layer_responses.json")
    client.log_batch(run_id, metrics=metrics)
    client.log_dict(run_id, spec.to_dict(), "config.yaml")
    if state != "running":
        client.set_terminated(run_id, "FINISHED" if state == "finished" else "FAILED")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store with two launches of one sweep: an old one (one trial) and the latest (seven trials)."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(SWEEP, artifact_location=(root / "artifacts").as_uri())
    client.create_experiment("another-sweep", artifact_location=(root / "artifacts2").as_uri())
    sweep_tags = {"resnet_sweeps.role": "sweep", "resnet_sweeps.sweep": SWEEP}
    old = client.create_run(experiment_id, run_name=f"{SWEEP}-old", tags=sweep_tags, start_time=1000)
    _log_trial(client, experiment_id, old.info.run_id, {"depth": 44}, 0, "finished", 0.01, 0.02)
    parent = client.create_run(experiment_id, run_name=SWEEP, tags=sweep_tags, start_time=int(time.time() * 1000))
    client.log_param(parent.info.run_id, "report", "['table6', 'table2', 'fig6', 'fig7']")
    for trial in TRIALS:
        _log_trial(client, experiment_id, parent.info.run_id, *trial)
    _planned_sweep(client, root)
    return uri, parent.info.run_id


def _planned_sweep(client, root) -> None:
    """A launch of two planned trials, one of which has not started (no child run yet): its sweep.yaml says so."""
    import yaml

    from orchestrator.specs.expansion import expand
    from orchestrator.specs.reading import sweep_from_dict

    sweep = sweep_from_dict({"name": "planned", "base": {"model": {"family": "cifar"}, "optim": {"iterations": 400}},
                             "grid": {"model.depth": [20, 32]}, "report": ["table6"]})
    experiment_id = client.create_experiment("planned", artifact_location=(root / "artifacts3").as_uri())
    parent = client.create_run(experiment_id, run_name="planned-sweep",
                               tags={"resnet_sweeps.role": "sweep", "resnet_sweeps.sweep": "planned"})
    client.log_text(parent.info.run_id, yaml.safe_dump(sweep.to_dict(), sort_keys=False), "sweep.yaml")
    first = expand(sweep)[0]
    assert first.spec.model.depth == 20
    _log_trial(client, experiment_id, parent.info.run_id, {"depth": 20}, 0, "finished", 0.04, 0.09, first.id)


def test_planned_trials_without_a_run_are_missing_cells(store):
    from orchestrator.report.cifar_table import table6
    from orchestrator.report.paper import paper_values

    uri, _ = store
    sweep = read_sweep("planned", uri)
    assert sweep.reports == ("table6",)
    assert [(r.arch, r.state, r.params) for r in sweep.rows] == [("resnet20", "finished", 269722),
                                                                 ("resnet32", "pending", 464154)]
    assert table6(sweep.rows, paper_values()).missing == ("ResNet-32: 1 pending",)


def test_rows_read_the_latest_launch_in_the_contract_layout(store):
    uri, parent_id = store
    sweep = read_sweep(SWEEP, uri)
    assert sweep.parent_run_id == parent_id and sweep.reports == ("table6", "table2", "fig6", "fig7")
    assert len(sweep.rows) == len(TRIALS)  # the old launch's resnet44 is not in it
    by_run = {r.run_name: r for r in sweep.rows}
    r20 = by_run["resnet20-A-seed1"]
    assert (r20.arch, r20.family, r20.depth, r20.n, r20.residual, r20.shortcut, r20.seed, r20.dataset) == (
        "resnet20", "cifar", 20, 3, True, "A", 1, "cifar10")
    assert (r20.state, r20.train_error, r20.test_error, r20.params, r20.iterations) == (
        "finished", 0.045, 0.088, 269722, 400)
    assert [p.iteration for p in r20.history] == [100, 200, 300, 400]
    assert r20.history[-1].test_error == pytest.approx(0.088)
    assert len(r20.layer_std) == 19 and r20.layer_names[0] == "layer0"
    plain = by_run["plain32-A-seed0"]
    assert (plain.params, plain.macs, plain.residual) == (464154, 68_862_592, False)  # counted, not logged
    running = by_run["resnet110-A-seed0"]
    assert (running.state, running.iteration, running.layer_std) == ("running", 200, ())
    assert by_run["resnet56-A-seed0"].state == "diverged"
    assert read_sweep("no-such-sweep", uri) is None


def test_the_writer_and_the_reader_page_through_every_trial_run(store, monkeypatch):
    """One query for a launch's trial runs, shared by the report and the writer, reads every page: no page limit
    truncates a large sweep."""
    from orchestrator.tracking import runs
    from orchestrator.tracking.writer import Tracker

    uri, parent_id = store
    monkeypatch.setattr(runs, "PAGE_SIZE", 2)  # seven trials: four pages
    assert len(read_sweep(SWEEP, uri).rows) == len(TRIALS)
    found = Tracker(uri).trial_runs(parent_id)
    assert [r.info.run_name for r in found] == [f"{'resnet' if m.get('residual', True) else 'plain'}{m['depth']}-A-"
                                                f"seed{seed}" for m, seed, *_ in TRIALS]  # oldest first


def test_report_command_end_to_end(store, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    uri, parent_id = store
    out = tmp_path / "report"
    assert main(["report", SWEEP, "--out", str(out), "--tracking-uri", uri]) == 0
    printed = capsys.readouterr().out
    # requested (table6, table2, fig6, fig7) and fillable (table1) reports; table2 has no ImageNet run: all missing
    expected = {f"{t}.{ext}" for t in ("table6", "table2", "table1") for ext in ("md", "csv", "tex")}
    expected |= {"fig6.png", "fig7.png", "report.md"}
    assert {p.name for p in out.iterdir()} == expected
    assert all((out / name).stat().st_size > 0 for name in expected)
    assert (out / "fig6.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table6 = {(r["net"], r["layers"]): r for r in csv.DictReader((out / "table6.csv").open())}
    assert table6[("ResNet", "20")]["error %"] == "8.80 (8.90 ± 0.14)"
    assert table6[("ResNet", "20")]["diff"] == "+0.05"
    assert table6[("plain", "32")]["error %"] == "12.00"
    assert table6[("ResNet", "56")]["runs"] == "0/1 finished, 1 diverged"
    assert table6[("ResNet", "110")]["runs"] == "0/1 finished, 1 running (200/400 it)"
    assert ("## Degradation check\n\n- Degradation (cifar10): held. training error at the end plain-32 9.0% vs "
            "plain-20 6.0%, and higher at all 3 earlier epochs (the paper: the deeper plain net is worse, throughout "
            "training).\n- ResNet-32 trains better than ResNet-20 (cifar10): held. training error at the end ResNet-32 "
            "3.0% vs ResNet-20 4.2% (the paper: the deeper ResNet is better).\n") in printed
    assert "7 trials: 5 finished, 1 running, 1 diverged" in printed
    assert "- table6: ResNet-110: 1 running (200/400 it)" in printed
    assert ("## Trials not finished\n\n- resnet56-A-seed0: diverged, 200/400 it\n"
            "- resnet110-A-seed0: running, 200/400 it") in printed
    assert "2 of 7 trials not finished" in printed
    assert all(r["runs"] == "not run" for r in csv.DictReader((out / "table2.csv").open()))
    assert r"\toprule" in (out / "table6.tex").read_text()
    logged = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(parent_id, "report")}
    assert logged == {f"report/{name}" for name in expected}


def test_unknown_sweep_lists_known_experiments(store, tmp_path, capsys):
    uri, _ = store
    assert main(["report", "nope", "--out", str(tmp_path / "x"), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "no sweep 'nope'" in err and f"known experiments: another-sweep, planned, {SWEEP}" in err
    assert not (tmp_path / "x").exists()


def test_report_finds_the_store_that_run_recorded(store, tmp_path, monkeypatch, capsys):
    """Without --tracking-uri, `report NAME` reads the store `resnet-sweep run` recorded for NAME."""
    from orchestrator.records import state

    uri, parent_id = store
    monkeypatch.setenv("RESNET_SWEEPS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no mlruns.db here: only the record can point at the store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    state.save(state.SweepRecord(name=SWEEP, sweep_file="sweep.yaml", experiment=SWEEP, tracking_uri=uri,
                                 parent_run_id=parent_id, storage_path=str(tmp_path), experiment_path=str(tmp_path),
                                 trials=[]))
    assert main(["report", SWEEP, "--only", "table6", "--no-log"]) == 0
    assert (tmp_path / "reports" / SWEEP / "table6.md").is_file()
    assert "8.80 (8.90 ± 0.14)" in capsys.readouterr().out
    assert main(["report", "planned", "--only", "nonsense"]) == 2
    assert "--only: unknown report 'nonsense'" in capsys.readouterr().err
    assert main(["report", "elsewhere"]) == 2  # no record, no store in the working directory
    assert "no MLflow store at sqlite:///" in capsys.readouterr().err
    assert not (tmp_path / "mlruns.db").exists()
