"""The paper's schedule (Sec. 4.2): lr per iteration, ResNet-110's warm-up, epochs derived from iterations."""
import pytest

from resnet_core.schedule import WarmupState, epochs_for, learning_rate, steps_per_epoch
from resnet_core.spec import OptimSpec, WarmupSpec
from resnet_core.specio import SpecError

RESNET110 = OptimSpec(warmup=WarmupSpec(lr=0.01, until_train_error=0.80))


def warm_state_at(iteration: int) -> bool:
    """The paper's ResNet-110 run: warm-up ended after about 400 iterations."""
    state = WarmupState.start(RESNET110)
    for checked_at in range(20, iteration + 1, 20):
        state = state.after_check(RESNET110, checked_at, 0.85 if checked_at < 400 else 0.79)
    return state.active


@pytest.mark.parametrize("iteration, lr", [(0, 0.01), (399, 0.01), (400, 0.1), (31999, 0.1), (32000, 0.01),
                                           (48000, 0.001), (63999, 0.001)])
def test_resnet110_lr_matches_the_paper(iteration, lr):
    assert learning_rate(RESNET110, iteration, warm_state_at(iteration)) == pytest.approx(lr, rel=1e-12)


def test_without_warmup_the_flag_is_ignored():
    plain = OptimSpec()
    assert learning_rate(plain, 0, warming_up=True) == 0.1
    assert learning_rate(plain, 47999) == pytest.approx(0.01)


def test_warmup_ends_on_error_threshold_and_records_when():
    state = WarmupState.start(RESNET110)
    assert state.active
    state = state.after_check(RESNET110, 20, 0.90)
    assert state.active and state.ended_at is None
    state = state.after_check(RESNET110, 40, 0.79)
    assert not state.active and state.ended_at == 40
    assert state.after_check(RESNET110, 60, 0.95) == state  # never restarts
    assert WarmupState.from_dict(state.to_dict()) == state
    assert not WarmupState.start(OptimSpec()).active


def test_warmup_cap_ends_it_even_at_high_error():
    capped = OptimSpec(warmup=WarmupSpec(max_iterations=100))
    state = WarmupState.start(capped).after_check(capped, 100, 0.99)
    assert not state.active and state.ended_at == 100


def test_epochs_are_derived_from_iterations_of_full_batches():
    assert steps_per_epoch(50_000, 128) == 390  # every iteration holds 128 images; 80 sit each epoch out
    assert epochs_for(64_000, 50_000, 128) == 165  # "about 164 epochs": 164.1 epochs of 390 iterations
    assert epochs_for(64_000, 45_000, 128) == 183  # 351 iterations an epoch on the 45k/5k split


def test_a_batch_larger_than_the_training_set_is_bad_input():
    with pytest.raises(SpecError, match="optim.batch_size.*at most the 100 training images"):
        steps_per_epoch(100, 128)
