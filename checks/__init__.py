"""Self-checks for the lab: after each task, `check("noisy_data")` prints one line saying how it went.

A check looks at what the task produced (shapes, pixel statistics, layer sizes, what a model
learned, what a figure shows), never at the code text, so any correct way of doing a task passes.
`check` reads the calling notebook's variables itself (as otter-grader does): students call it
with no arguments, and a variable that was never defined (or was deleted) reads as "not attempted
yet" instead of a NameError. `evaluate(name, namespace)` is the same check for a grader: it takes
the variables as a dict and returns a Result. Neither ever raises, whatever the variables hold.

Every check runs in two steps, so that a grader can run the second one outside the student's kernel:
`snapshot` turns the variables a task reads (`READS`) into plain data (arrays; every layer of a model, its
type, configuration and weights, and its compile settings; a figure's images and lines; a History's numbers), and
`judge` decides the verdict from that data alone. Models are judged by rebuilding the layers plain data reproduces
from the weights (never by calling the student's model), on the lab's own test images with fresh noise; a layer
that cannot be rebuilt is named in the verdict.

Each task is judged on its own, with the earlier variables as they are, so one mistake costs one
task: predictions passes when x_test_denoised is dae's output for x_test_noisy, whatever x_test_noisy
holds; dae_training judges the training of the model it was given, whatever its architecture, on fresh
noise of the kind the student drew (its factor bounded to NOISE_RANGE). A trained model's quality bar is never
skipped: a snapshot's arrays, compile settings and History are whatever the kernel says, so only the model's weights,
run here on images the grader loads itself, show its training (the bookkeeping, cross-checked, can only fail a model
whose weights pass: 10 epochs where the card says 30); the student's variables may choose the noise it is
judged at, never whether it is judged (data of another scale: blocked on the data task). Where a task cannot be judged until an earlier one is fixed (no
model to run, or a mistake that an earlier task's mistake may explain: `Suspect`, `PREREQUISITES`),
its status is "blocked" and its message starts "fix the <task> task first: " with that task's hint.

The package, one layer a module, each for its own reader:
- here, the public API: `check`, `evaluate`, `judge` (and `TASKS`, `DEFINES`, `READS`); importing it loads no Keras
  (the parts that do load when first used);
- `verdicts`: the Result a check returns, the exceptions that decide it, and `require` ("not attempted");
- `snapshots`: the plain data of a snapshot and `snapshot()` (what grading/export.py encodes);
- `variables`: reading, sampling and running the student's variables;
- `models`, `noise`, `figures`: the judgements of a model, of noise (and of what a DAE learned from it), of a figure;
- `names`: what each task reads, `DEFINES`, `READS`, `PREREQUISITES` (plain tables, no imports);
- `tasks`: the nine task checks with their hints, `CHECKS`;
- `challenge`: the optional class challenge (`OPTIONAL`): its rules and score, shared with the grader, and the
  student's `check("challenge")`, which runs `challenge_model` itself on a public practice set.
"""

import importlib
import inspect
from collections.abc import Mapping

from checks import challenge
from checks.names import DEFINES, OPTIONAL, PREREQUISITES, READS, TASKS
from checks.verdicts import STATUSES, Blocked, Failed, NotAttempted, Result, Suspect, pointed, require

LOADED_ON_USE = {  # what imports Keras, loaded when first used: a grader judging a task nobody attempted never needs it
    "CHECKS": "checks.tasks",
    "snapshot": "checks.snapshots",
    "FigureInfo": "checks.snapshots",
    "Foreign": "checks.snapshots",
    "HistoryInfo": "checks.snapshots",
    "LayerInfo": "checks.snapshots",
    "ModelInfo": "checks.snapshots",
}

__all__ = [  # the API; the snapshot types are what grading/export.py encodes
    "check",
    "evaluate",
    "judge",
    "snapshot",
    "TASKS",
    "DEFINES",
    "READS",
    "PREREQUISITES",
    "OPTIONAL",
    "STATUSES",
    "Result",
    "FigureInfo",
    "Foreign",
    "HistoryInfo",
    "LayerInfo",
    "ModelInfo",
]


def __getattr__(name):
    """The parts of the API in LOADED_ON_USE, imported on first use."""
    if name in LOADED_ON_USE:
        return getattr(importlib.import_module(LOADED_ON_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def evaluate(name, namespace):
    """Run the check for task `name` on the variables in `namespace`; return a Result, never raise. The optional
    challenge (checks/challenge.py) runs the student's own model in the student's kernel: it has no snapshot."""
    if name == challenge.TASK and isinstance(namespace, Mapping):
        return challenge.evaluate(namespace)
    if name not in READS:
        return Result("failed", f"there is no check called {name!r}: use one of {', '.join(TASKS + OPTIONAL)}")
    if not isinstance(namespace, Mapping):
        return Result("failed", f"the namespace must be a dict of variables, got {type(namespace).__name__}")
    from checks.snapshots import snapshot

    return judge(name, snapshot(namespace, READS[name]))


def judge(name, data):
    """Decide task `name` from a snapshot (plain data, see `snapshot`); return a Result, never raise. A task none of
    whose variables exist is not attempted, whatever its check would look at next: that needs no Keras."""
    if name not in READS:
        return Result("failed", f"there is no check called {name!r}: use one of {', '.join(TASKS)}")
    try:
        if not any(variable in data for variable in READS[name]):
            require(data, *DEFINES[name])
        from checks.tasks import CHECKS

        return Result("passed", CHECKS[name](data))
    except NotAttempted as err:
        return Result("not attempted", str(err))
    except Blocked as err:
        return Result("blocked", str(err))
    except Suspect as err:
        return blame(name, data) or Result("failed", pointed(name, str(err)))
    except Failed as err:
        return Result("failed", pointed(name, str(err)))
    except Exception as err:  # a value no check foresaw: report it rather than crash the student's notebook
        return Result(
            "failed",
            f"the check could not inspect your variables ({type(err).__name__}: {err}); re-run the task's cell",
        )


def blame(name, data):
    """A "blocked" Result naming the first earlier task (PREREQUISITES) that does not pass, or None when they all pass."""
    for task in PREREQUISITES.get(name, ()):
        result = judge(task, data)
        if result.status == "blocked":  # it names a task earlier still
            return result
        if result.status != "passed":
            return Result("blocked", str(Blocked(task, result.message)))
    return None


def check(name, namespace=None):
    """Check task `name` against the caller's variables (or `namespace`), print one line and return the Result."""
    if namespace is None:
        frame = inspect.currentframe().f_back
        namespace = frame.f_globals if frame is not None else {}
    result = evaluate(name, namespace)
    print(challenge.line(result) if name == challenge.TASK else result.line(name))
    return result
