"""The one line a crashed trial gets: its cause, from the error text Tune keeps for the trial (texts as Ray 2.60
writes them for a killed process, a lost node and an exception raised in the trial)."""
from orchestrator.running.retries import cause_of

KILLED_PROCESS = """Failure # 1 (occurred at 2026-12-03_14-04-45)
The actor died unexpectedly before finishing this task.
	class_name: ImplicitFunc
	actor_id: 04b0dd08310f91d54146e2f802000000
The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit detail: Worker \
unexpectedly exits with a connection error code 2. End of file.
"""
LOST_NODE = """Failure # 2 (occurred at 2026-12-03_14-05-01)
The actor died unexpectedly before finishing this task.
	class_name: ImplicitFunc
The actor died because its node has died. Node Id: b35380885f31f7995aeaf3ac41b9aa71e0efbee0aca52e1a59f5866c
	the actor's node was terminated unexpectedly: health check failed due to missing too many heartbeats
"""
RAISED = """Failure # 1 (occurred at 2026-12-03_14-06-00)
ray::ImplicitFunc.train() (pid=4242, ip=127.0.0.1)
  File "/x/trainable.py", line 90, in run_trial
resnet_core.failures.OutOfMemoryError: trial resnet8: CUDA out of memory at batch size 128
"""


def test_a_crash_is_named_by_why_the_actor_died_or_the_exception():
    assert cause_of(KILLED_PROCESS) == "the actor is dead because its worker process has died"
    assert cause_of(LOST_NODE) == "the actor died because its node has died"
    assert cause_of(RAISED) == "OutOfMemoryError: trial resnet8: CUDA out of memory at batch size 128"
    assert cause_of("") == "no error text"
