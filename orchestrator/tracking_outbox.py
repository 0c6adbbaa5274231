"""The driver's MLflow writes, kept in order while the tracking server is unreachable and sent when it is back.

A tracking server that goes away mid-sweep must neither stall the sweep (Tune's event loop runs the callback)
nor crash it. Every write of the driver's Tune callback goes into a per-trial queue and is sent at once when the
server answers (requests made with `quick_requests`, so a dead server costs seconds, not minutes). When a request
fails because the server is unreachable, that write and everything after it stays queued, in order, and is tried
again on a later callback event and at the end of the experiment.

Nothing is logged twice: after a failed request the server may have committed it anyway (the answer was lost), so
before sending again the run's last logged step is read back from the server and epochs at or below it are
skipped (final_ metrics likewise, by value). The queue is bounded (MAX_PENDING_EPOCHS per run): past it the oldest
waiting epochs are dropped (except the first, whose request may have reached the server), and the run gets a tag
resnet_sweeps.missing_steps naming them once the server is back.
What is still unsent at the end is named on stderr (`report_unsent`) and kept in a JSON file (`save`) in the
sweep's state directory, which `resnet-sweep resume NAME` sends (`load`, then `flush_at_end`) once the server is back.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from orchestrator.tracking import (EPOCH_METRICS, MISSING_STEPS, Tracker, format_steps, quick_requests,
                                   redact_uri, unreachable)

# Epochs waiting per run while the server is away. The paper's longest schedules are 164 epochs (CIFAR-10, 64k
# iterations of 391) and 120 (ImageNet, 600k iterations at batch 256), so a whole trial's history fits ~6 times:
# nothing is dropped unless one trial runs >1000 epochs during an outage. An epoch is kept as ~10 floats
# (~0.4 KB), so waiting writes cost the driver at most ~0.4 MB per run whatever the outage's length.
MAX_PENDING_EPOCHS = 1000
EPOCHS_PER_BATCH = 50     # MLflow takes up to 1000 metrics per log_batch; an epoch has up to 10
MAX_BACKOFF_S = 30.0      # after a failed attempt, the next waits 2x that attempt's duration (at most this)
FINAL_WAIT_S = 30.0       # at the end, how long the last writes keep trying: a server restarting right then
                          # (`mlflow server` takes 5-25 s to start on a 2-core machine, busy or not)


@dataclass(frozen=True)
class Epoch:
    step: int                              # iteration: MLflow's step
    values: tuple[float | None, ...]       # in EPOCH_METRICS order; None where the result had none
    stamp_ms: int                          # when the driver got it: the metrics' timestamp, however late sent

    @staticmethod
    def of(result: dict[str, Any]) -> Epoch:
        def number(v: Any) -> float | None:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
            return float(v) if ok else None

        return Epoch(int(result["iteration"]), tuple(number(result.get(k)) for k in EPOCH_METRICS),
                     int(time.time() * 1000))

    def result(self) -> dict[str, Any]:
        return {"iteration": self.step, "logged_at_ms": self.stamp_ms,
                **{k: v for k, v in zip(EPOCH_METRICS, self.values) if v is not None}}


@dataclass(frozen=True)
class Start:
    number: int          # starts of this trial in this driver process so far (1 = first)


@dataclass(frozen=True)
class Tags:
    tags: dict[str, str]


@dataclass(frozen=True)
class End:
    state: str
    final: dict[str, Any]
    layer_names: list[str] | None = None
    error: str | None = None


Write = Epoch | Start | Tags | End


@dataclass
class RunBox:
    """One trial's child run: what the server has, and what waits to be sent."""
    info: dict[str, Any]                   # Trial.to_dict(): id, name, spec
    model_cost: Callable[[], dict[str, int]]
    run_id: str | None = None
    server_step: int | None = None         # last step the server has; None: read it before sending epochs
    queued_step: int = -1                  # highest step queued or known logged: a step is queued once
    starts_base: int | None = None         # the run's starts tag before this process started the trial
    starts: int = 0
    pending: deque = field(default_factory=deque)
    epochs: int = 0                        # Epochs in `pending`
    dropped: list[int] = field(default_factory=list)
    dropped_tagged: int = 0                # how many of `dropped` the missing_steps tag names
    retrying: bool = False                 # the head write failed once: it may have reached the server
    broken: str | None = None              # the server refused this run for good (a 4xx): the reason

    @property
    def last_step(self) -> int:
        return max(self.queued_step, -1 if self.server_step is None else self.server_step)


class Outbox:
    """All of one driver's writes for a sweep launch: the parent run's state and one RunBox per trial."""

    def __init__(self, tracker: Tracker, parent_run_id: str):
        self.tracker, self.parent_run_id = tracker, parent_run_id
        self.boxes: dict[str, RunBox] = {}
        self.sweep_state: str | None = None    # the parent's state to write ("running" = reopen)
        self._retry_at = 0.0
        self.warned: set[str] = set()

    # -- queueing ---------------------------------------------------------------------------------------------

    def box(self, info: dict[str, Any], model_cost: Callable[[], dict[str, int]]) -> RunBox:
        if info["id"] not in self.boxes:
            self.boxes[info["id"]] = RunBox(info, model_cost)
        return self.boxes[info["id"]]

    def put(self, box: RunBox, write: Write) -> None:
        if box.broken:
            if isinstance(write, Epoch):
                box.dropped.append(write.step)
            return
        if isinstance(write, Epoch):
            if write.step <= box.last_step:
                return  # logged (or queued) already: never a step twice
            box.queued_step = write.step
            box.epochs += 1
            if box.epochs > MAX_PENDING_EPOCHS:
                self._drop_oldest_epoch(box)
        box.pending.append(write)

    def _drop_oldest_epoch(self, box: RunBox) -> None:
        for i, write in enumerate(box.pending):
            if isinstance(write, Epoch) and not (i == 0 and box.retrying):  # the head may be on the server
                del box.pending[i]
                box.epochs -= 1
                box.dropped.append(write.step)
                return

    def start(self, box: RunBox) -> None:
        box.starts += 1
        self.put(box, Start(box.starts))

    # -- sending ----------------------------------------------------------------------------------------------

    def flush(self, force: bool = False) -> bool:
        """Send what waits, in order; True when nothing is left. Without `force`, an attempt soon after a failed
        one is skipped (see MAX_BACKOFF_S), so a server that hangs rather than refuses costs the sweep at most a
        third of its time, and one that refuses costs milliseconds per event."""
        if not force and time.monotonic() < self._retry_at:
            return False
        started = time.monotonic()
        try:
            with quick_requests():
                if self.sweep_state is not None:
                    self._send_sweep_state()
                for box in self.boxes.values():
                    self._send(box)
        except _Offline:
            spent = time.monotonic() - started
            self._retry_at = time.monotonic() + min(MAX_BACKOFF_S, 2 * spent)
            return False
        return True

    def flush_at_end(self) -> bool:
        """Keep trying for FINAL_WAIT_S; True when everything reached the server."""
        deadline = time.monotonic() + FINAL_WAIT_S
        while not self.flush(force=True):
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)
        return True

    def _send_sweep_state(self) -> None:
        state = self.sweep_state
        try:
            if state == "running":
                self.tracker.reopen_sweep(self.parent_run_id)
            else:
                self.tracker.end_sweep(self.parent_run_id, state)
        except Exception as err:  # noqa: BLE001
            self._failed(err, f"the sweep's parent run {self.parent_run_id}")
        self.sweep_state = None

    def _send(self, box: RunBox) -> None:
        if box.broken or not (box.pending or len(box.dropped) > box.dropped_tagged):
            return
        try:
            if box.run_id is None or box.server_step is None:
                found = self.tracker.trial_run(self.parent_run_id, box.info, box.model_cost)
                box.run_id, box.server_step = found.run_id, found.last_step
                if box.starts_base is None:  # read once: later reads may include this process's starts
                    box.starts_base = found.starts
            while box.pending:
                self._send_head(box)
                box.retrying = False
            if len(box.dropped) > box.dropped_tagged:
                self.tracker.client.set_tag(box.run_id, MISSING_STEPS, format_steps(box.dropped))
                box.dropped_tagged = len(box.dropped)
        except _Offline:
            raise
        except Exception as err:  # noqa: BLE001
            if unreachable(err):
                box.retrying, box.server_step = True, None  # read the server's last step again before resending
                raise _Offline() from err
            self._give_up(box, err)

    def _send_head(self, box: RunBox) -> None:
        head = box.pending[0]
        if isinstance(head, Epoch):
            batch = []
            for write in box.pending:
                if not isinstance(write, Epoch) or len(batch) == EPOCHS_PER_BATCH:
                    break
                batch.append(write)
            fresh = [e.result() for e in batch if e.step > box.server_step]
            if fresh:
                box.server_step = max(box.server_step, self.tracker.log_epochs(box.run_id, fresh))
            for _ in batch:
                box.pending.popleft()
            box.epochs -= len(batch)
            return
        if isinstance(head, Start):
            self.tracker.trial_started(box.run_id, box.starts_base + head.number)
        elif isinstance(head, Tags):
            self.tracker.set_tags(box.run_id, head.tags)
        elif isinstance(head, End):
            self.tracker.end_trial(box.run_id, head.state, head.final, head.layer_names, head.error,
                                   again=box.retrying)
        box.pending.popleft()

    def _give_up(self, box: RunBox, err: BaseException) -> None:
        """The server answered with a refusal that will not change (a 4xx): drop this run's writes, say so."""
        box.broken = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        box.dropped += [w.step for w in box.pending if isinstance(w, Epoch)]
        box.pending.clear()
        box.epochs = 0
        self._warn(f"MLflow refused a write for {box.info['name']}; its further writes are skipped: {box.broken}")

    def _failed(self, err: BaseException, what: str) -> None:
        if unreachable(err):
            raise _Offline() from err
        self._warn(f"MLflow refused a write for {what}: {type(err).__name__}: {err}")

    def _warn(self, text: str) -> None:
        import sys

        if text not in self.warned:
            self.warned.add(text)
            print(f"resnet-sweep: {text}", file=sys.stderr, flush=True)

    # -- what is left -------------------------------------------------------------------------------------------

    def unsent(self) -> list[str]:
        """One line per run with writes that never reached the server, naming its steps and final state."""
        lines = []
        if self.sweep_state is not None:
            lines.append(f"sweep parent run {self.parent_run_id}: state {self.sweep_state!r}")
        for box in self.boxes.values():
            untagged = box.dropped if len(box.dropped) > box.dropped_tagged else []  # else the run's tag says
            steps = [w.step for w in box.pending if isinstance(w, Epoch)] + untagged
            ends = [w.state for w in box.pending if isinstance(w, End)]
            if not (steps or box.pending):
                continue
            parts = [f"steps {format_steps(steps, 400)}" if steps else "",
                     f"final state {ends[-1]!r}" if ends else "",
                     f"(skipped after: {box.broken})" if box.broken else ""]
            run = f"run {box.run_id}" if box.run_id else "run not created"
            lines.append(f"{box.info['name']} ({run}): " + (" ".join(p for p in parts if p) or "tags"))
        return lines

    def report_unsent(self, kept_in: Path | None = None, resume_name: str | None = None) -> None:
        import sys

        lines = self.unsent()
        if not lines:
            return
        print(f"resnet-sweep: the MLflow tracking server {redact_uri(self.tracker.tracking_uri)} could not be "
              f"reached at the end of the sweep; these writes are NOT in MLflow (the trials' results are in the Ray "
              f"Tune experiment directory; `resnet-sweep status` shows them):", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        if kept_in is not None:
            print(f"they are kept in {kept_in}: `resnet-sweep resume {resume_name}` sends them once the server "
                  "answers", file=sys.stderr)
        sys.stderr.flush()

    # -- kept on disk until the server is back ------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """What waits, as JSON (atomically): the writes in order, the dropped steps, the runs' ids."""
        from orchestrator.state import atomic_write

        boxes = [{"info": b.info, "run_id": b.run_id, "starts_base": b.starts_base, "dropped": b.dropped,
                  "dropped_tagged": b.dropped_tagged, "broken": b.broken,
                  "pending": [{"kind": type(w).__name__, **asdict(w)} for w in b.pending]}
                 for b in self.boxes.values() if b.pending or len(b.dropped) > b.dropped_tagged]
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"tracking_uri": self.tracker.tracking_uri,
                                       "parent_run_id": self.parent_run_id, "sweep_state": self.sweep_state,
                                       "runs": boxes}))

    @staticmethod
    def load(path: Path, model_cost: Callable[[dict[str, Any]], dict[str, int]]) -> Outbox:
        """An Outbox from `save`'s file; `model_cost(spec)` for runs still to be created."""
        data = json.loads(path.read_text())
        outbox = Outbox(Tracker(data["tracking_uri"]), data["parent_run_id"])
        outbox.sweep_state = data["sweep_state"]
        kinds = {"Epoch": Epoch, "Start": Start, "Tags": Tags, "End": End}
        for saved in data["runs"]:
            info = saved["info"]
            box = outbox.box(info, lambda spec=info["spec"]: model_cost(spec))
            box.run_id, box.starts_base, box.broken = saved["run_id"], saved["starts_base"], saved["broken"]
            box.dropped, box.dropped_tagged = saved["dropped"], saved["dropped_tagged"]
            for write in saved["pending"]:
                kind = kinds[write.pop("kind")]
                if kind is Epoch:
                    write["values"] = tuple(write["values"])
                box.pending.append(kind(**write))
            box.epochs = sum(isinstance(w, Epoch) for w in box.pending)
            box.queued_step = max([-1, *(w.step for w in box.pending if isinstance(w, Epoch))])
            box.retrying = True  # the last attempt may have reached the server
        return outbox


class _Offline(Exception):
    """The tracking server did not answer: stop sending until the next attempt."""
