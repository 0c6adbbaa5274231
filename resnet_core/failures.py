"""How training a trial fails at run time, as opposed to bad input (SpecError): the device ran out of memory, or the
loss stopped being a number. Both cross from a trial's worker to the driver intact (errors.Picklable)."""
from __future__ import annotations

from resnet_core.errors import Picklable
from resnet_core.spec import TrialSpec


class OutOfMemoryError(Picklable, RuntimeError):
    """The trial's device ran out of memory; the message says the batch size and what to change."""

    def __init__(self, spec: TrialSpec, workers: int, device: str, cause: BaseException):
        batch = spec.optim.batch_size
        share = f" ({batch // workers} per worker)" if workers > 1 else ""
        super().__init__(
            f"out of memory on {device} training {spec.model.name} at batch size {batch}{share}: lower "
            f"optim.batch_size (and optim.lr in proportion), use runtime.precision bf16, or give the trial a "
            f"device of its own (resources.gpu: 1 rather than a fraction). {type(cause).__name__}: "
            f"{str(cause).splitlines()[0] if str(cause) else ''}")


class DivergedError(Picklable, RuntimeError):
    """The training loss became NaN or infinite; `iteration` is the 0-based schedule iteration where it did."""

    def __init__(self, iteration: int):
        self.iteration = iteration
        super().__init__(f"diverged at iteration {iteration}: the training loss became NaN or infinite")
