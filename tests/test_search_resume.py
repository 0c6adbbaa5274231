"""What a resumed search and a resumed PBT population start from, without Ray running: the searcher's saved state
(Tune's Searcher.save_to_dir) with the trials' records decides which trials are handed out again, what Optuna
is told, and how many samples are left; a PBT trial goes on with the spec of its latest exploit, and continues
the copied checkpoint only until it has started from it once; the population's first round waits for every trial
to catch up."""
from __future__ import annotations

import pickle

from orchestrator.records import trial_record
from orchestrator.running.pbt import continued, exploit_restore, first_round
from orchestrator.running.search import SEARCH_STATE, SweepSearch, handed_out
from orchestrator.specs.reading import load_sweep
from tests.conftest import trial_spec
from tests.test_search import SEARCH


def test_a_resumed_search_hands_out_its_unfinished_trials_first_and_tells_optuna_the_rest(tmp_path):
    (tmp_path / "s.yaml").write_text(SEARCH)
    sweep = load_sweep(tmp_path / "s.yaml")
    root = tmp_path / "experiment"
    first = SweepSearch(sweep, str(root), str(root))
    handed = [first.suggest(f"tune-{i}")["trial"] for i in range(3)]
    epoch = {"iteration": 24, "epoch": 6, "test_error": 0.5, "train_loss": 1.0, "done": True}
    trial_record.append(trial_record.record_path(root, handed[0]), [trial_record.event("epoch", **epoch)])
    first.on_trial_complete("tune-0", result=epoch)
    # Then the driver died: trial 1 finished (its record says so) before the searcher heard of it, trial 2 was
    # midway. The saved state is the one written at the last change.
    epoch = {**epoch, "test_error": 0.25}
    trial_record.append(trial_record.record_path(root, handed[1]), [trial_record.event("epoch", **epoch)])
    trial_record.append(trial_record.record_path(root, handed[2]), [trial_record.event("epoch", iteration=4,
                                                                                      test_error=0.6)])
    assert [t.id for t in handed_out(str(root))] == [t["id"] for t in handed]

    resumed = SweepSearch(sweep, str(root), str(root))
    assert resumed.continue_from(str(root)) == 1 + 4 - 3  # trial 2 again, and one new sample
    again = resumed.suggest("tune-new-a")
    assert again["trial"] == handed[2]  # the same trial (id, name, spec): it continues from its checkpoint
    resumed.on_trial_complete("tune-new-a", result={"test_error": 0.3})
    new = resumed.suggest("tune-new-b")["trial"]
    assert new["name"].endswith("-s3") and new["id"] not in {t["id"] for t in handed}
    saved = pickle.loads((root / SEARCH_STATE).read_bytes())
    study = pickle.loads(saved["optuna"])["_ot_study"]
    values = sorted(t.value for t in study.trials if t.value is not None)
    assert values == [0.25, 0.3, 0.5]  # before the kill, found in the record, and after the resume
    assert len(study.trials) == 4 and len(saved["trials"]) == 4


def test_a_pbt_trial_resumes_with_its_latest_exploit_and_adopts_the_copied_checkpoint_once(tmp_path):
    from resnet_core.train import train

    source, own = tmp_path / "source" / "latest", tmp_path / "experiment" / "t_1" / "latest"
    spec = trial_spec({"model.depth": 8, "data.dataset": "synthetic", "data.synthetic_train": 16,
                       "data.synthetic_test": 16, "optim.batch_size": 8, "optim.iterations": 2,
                       "optim.milestones": [], "runtime.device": "cpu"})
    for _ in train(spec, checkpoint_dir=source):
        pass
    info = {"id": "1", "name": "t", "spec": spec.to_dict(), "varied": {}}
    record = trial_record.record_path(tmp_path / "experiment", info)
    new_spec = {**spec.to_dict(), "optim": {**spec.to_dict()["optim"], "lr": 0.05}}
    trial_record.append(record, [trial_record.event("exploit", n=1, from_trial="2", checkpoint=str(source),
                                                    spec=new_spec, new={"optim.lr": 0.05})])
    resumed = continued(info, str(tmp_path / "experiment"))
    assert resumed["spec"]["optim"]["lr"] == 0.05 and resumed["exploit"]["n"] == 1
    restored, start = exploit_restore(resumed, record, None, own, tmp_path / "work")
    assert restored is not None and start["exploit"] == 1 and start["exploited_from"] == "2"
    assert (own / "checkpoint.pt").read_bytes() == (source / "checkpoint.pt").read_bytes()  # a retry starts here
    trial_record.append(record, [trial_record.event("start", **start)])
    assert exploit_restore(resumed, record, None, own, tmp_path / "work2") == (None, {})  # adopted: its own now


def test_a_resumed_population_meets_for_its_first_round_past_the_trial_furthest_ahead(tmp_path):
    infos = [{"id": str(i), "name": f"t{i}"} for i in range(3)]
    for info, epochs in zip(infos, (4, 3, 0)):  # one waiting at a round, one behind it, one not started
        trial_record.append(trial_record.record_path(tmp_path, info),
                            [trial_record.event("epoch", iteration=2 * e, epoch=e) for e in range(1, epochs + 1)])
    assert first_round(infos, str(tmp_path), 2) == 6 and first_round(infos, str(tmp_path), 5) == 5
    assert first_round(infos[2:], str(tmp_path), 2) == 0  # a new population: rounds from the first interval
