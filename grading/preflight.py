"""The grader's own failures are never a student's grade.

Before grading, `check` grades a trivial notebook exactly as every submission will be graded (a Dask task, a grader
worker, the sandbox, its user and limits); if that fails, nothing is graded and the run stops with the cause. During a
run, whose fault a job's failure is, is decided by experiment, not by the exception's type: a job that failed as the
grader might (its kernel never answered, its worker died holding nothing of the submission) is followed by the same
trivial notebook graded again on the same machine, the canary (run.grade_one); only if that fails too is the grader at
fault, and the run stops, writing the rows decided (GraderFailed, then GraderUnusable). While the canary passes, the
submission is tried again (run.GRADER_RETRIES) and then its row is an error: no number of submissions stops a run.
After its kernel answered, whatever goes wrong with a job is the submission's (grading/execute.py).
"""

import nbformat

from grading.report import NOT_ATTEMPTED, Row

FIX = 'Fix that and run the same command again (docs/grading-at-scale.md, "The sandbox", says what each layer needs).'


class GraderFailed(Exception):
    """A job failed as the grader might (its kernel never started, its worker died holding nothing of the submission);
    raised out of run.grade_one only where the canary failed too: the grader is at fault."""


class GraderUnusable(Exception):
    """The grader cannot grade on this machine as it is; the message says why and how to fix it. Nothing was
    written, or (a run stopped part way) only the rows decided before it stopped."""


def refuse_unsandboxed(box, allowed):
    """Raise GraderUnusable when bubblewrap is missing or refused here, unless grading unsandboxed was asked for."""
    if box.bwrap or allowed:
        return
    why = next((reason for reason in box.reasons if reason.startswith("unsandboxed")), "unsandboxed")
    raise GraderUnusable(
        f"refusing to grade: {why}. Install bubblewrap (as root: apt-get install bubblewrap, or `make sandbox`), "
        "or grade without it with --unsandboxed (each row then says unsandboxed)."
    )


def trivial_notebook():
    """The pre-flight submission: one trivial cell, no task attempted, so every check says "not attempted"."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 1 + 1")])
    nb.cells[0].id = "preflight"
    return nbformat.writes(nb).encode("utf-8")


def check(client, task, tasks, timeout, limits):
    """Grade the trivial notebook as a submission is graded (task: the Dask task function, kernel output kept);
    raise GraderUnusable, saying why, unless every task came back "not attempted"."""
    future = client.submit(task, "pre-flight", trivial_notebook(), tasks, timeout, tuple(limits), True, pure=False)
    try:
        row = Row.from_json(future.result())
    except Exception as err:  # GraderFailed, KilledWorker, or a bug: whatever it is, nothing may be graded
        raise GraderUnusable(
            "the pre-flight check failed: the grader could not run a trivial notebook in its sandbox, so nothing "
            f"was graded and no grades were written. Cause: {err}\n{FIX}"
        ) from None
    wrong = unexpected(row)
    if wrong:
        raise GraderUnusable(
            'the pre-flight check failed: a trivial notebook was not judged "not attempted", so nothing was graded '
            f"and no grades were written. It got {wrong}\n{FIX}"
        )


def unexpected(row):
    """What a grading of the trivial notebook got other than "not attempted" for every task, in words; "" if nothing."""
    wrong = {name: verdict for name, verdict in row.results.items() if verdict[0] != NOT_ATTEMPTED}
    if not wrong:
        return ""
    said = "; ".join(f"{name}: {' '.join(filter(None, verdict))}" for name, verdict in wrong.items())
    return f"{said}. {row.note or row.error}"
