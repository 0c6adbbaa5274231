"""A trial spec survives dict -> spec -> dict -> spec, and bad input names its key path."""
import pytest
import yaml

from resnet_core.spec import TrialSpec
from resnet_core.specio import SpecError, check_key_path, flatten, set_path


def test_empty_dict_is_the_papers_resnet20_recipe():
    spec = TrialSpec.from_dict({})
    assert spec.model.name == "resnet20"
    assert (spec.optim.lr, spec.optim.batch_size, spec.optim.milestones, spec.optim.iterations) == (
        0.1, 128, (32000, 48000), 64000)
    assert spec.data.normalize == "pixel_mean"


def test_round_trip_through_yaml():
    spec = TrialSpec.from_dict({"model": {"family": "resnext", "depth": 29, "cardinality": 16},
                                "optim": {"warmup": {"lr": 0.01}, "milestones": [10, 20], "iterations": 30},
                                "data": {"dataset": "synthetic"}, "seed": 3})
    again = TrialSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_yaml_floats_for_whole_numbers_are_accepted():
    assert TrialSpec.from_dict({"optim": {"iterations": 6.4e4}}).optim.iterations == 64000


@pytest.mark.parametrize("data,key_path,expected", [
    ({"modle": {}}, "modle", "one of the keys"),
    ({"model": {"depht": 20}}, "model.depht", "one of the keys"),
    ({"model": {"depth": "20"}}, "model.depth", "whole number"),
    ({"model": {"depth": 21}}, "model.depth", "6n+2"),
    ({"model": {"shortcut": "D"}}, "model.shortcut", "'A', 'B', 'C'"),
    ({"model": {"residual": "yes"}}, "model.residual", "true or false"),
    ({"optim": {"lr": -0.1}}, "optim.lr", "positive"),
    ({"optim": {"lr": 0}}, "optim.lr", "positive"),
    ({"optim": {"milestones": [48000, 32000]}}, "optim.milestones", "increasing"),
    ({"optim": {"milestones": [1, "x"]}}, "optim.milestones[1]", "whole number"),
    ({"optim": {"warmup": {"until_train_error": 1.5}}}, "optim.warmup.until_train_error", "fraction"),
    ({"data": {"dataset": "mnist"}}, "data.dataset", "'cifar10'"),
    ({"data": 5}, "data", "mapping"),
    ({"seed": True}, "seed", "whole number"),
])
def test_bad_input_names_key_path_value_and_expectation(data, key_path, expected):
    with pytest.raises(SpecError) as err:
        TrialSpec.from_dict(data)
    assert err.value.key_path == key_path
    assert expected in str(err.value)
    assert key_path in str(err.value)


def test_error_in_a_file_names_the_file():
    err = SpecError("optim.lr", -1, "a positive number").in_file("sweeps/x.yaml")
    assert str(err) == "sweeps/x.yaml: optim.lr: got -1, expected a positive number"


def test_key_paths_and_flattening():
    check_key_path(TrialSpec, "model.depth")
    check_key_path(TrialSpec, "optim.warmup.lr")
    with pytest.raises(SpecError, match="model.colour"):
        check_key_path(TrialSpec, "model.colour")
    with pytest.raises(SpecError, match="is a value"):
        check_key_path(TrialSpec, "seed.x")
    nested = set_path({"optim": {"lr": 0.1}}, "optim.warmup.lr", 0.01)
    assert nested == {"optim": {"lr": 0.1, "warmup": {"lr": 0.01}}}
    assert flatten(nested) == {"optim.lr": 0.1, "optim.warmup.lr": 0.01}


def test_set_items_read_yaml_values_and_exponents():
    from resnet_core.specio import parse_set_item

    assert parse_set_item("optim.weight_decay=1e-4", "x=1") == ("optim.weight_decay", 1e-4)
    assert parse_set_item("runtime.compile=on", "x=1") == ("runtime.compile", "on")
    assert parse_set_item("seeds=[0, 1]", "x=1") == ("seeds", [0, 1])
    assert parse_set_item("model.residual=false", "x=1") == ("model.residual", False)
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_set_item("model.depth", "model.depth=20")
    with pytest.raises(SpecError, match="a YAML value"):
        parse_set_item("seeds=[0, 1", "x=1")


def test_what_yaml12_dumps_it_reads_back_equal():
    """The sweep copies `resume`, jobs and MLflow keep are written by yaml12.dump: a string YAML 1.2 would read as
    a number or a bool ("1e5", "on", "012", ".inf") stays a string."""
    from resnet_core import yaml12

    data = {"description": "1e5", "root": "on", "name": "012", "note": ".inf", "title": "True", "lr": 1e-4,
            "epochs": 12, "flag": False, "nothing": None, "inf": float("inf"), "list": [1.5, "2", "0.5e1"]}
    assert yaml12.load(yaml12.dump(data)) == data
