"""The grader's own failures are never a student's grade.

Before grading, `check` grades a trivial notebook exactly as every submission will be graded (a Dask task, a grader
worker, the sandbox, its user and limits); if that fails, nothing is graded and the run stops with the cause. During a
run, a job that failed for the grader's reasons (its kernel never answered, its worker died) is tried again
(run.GRADER_RETRIES) and then "not graded", never "error" with 0 points; `Streak` stops the run when several
submissions in a row fail so. A kernel that the notebook itself kills (exit(), a limit) stays the student's "error".
"""

import nbformat

from grading.report import NOT_ATTEMPTED, Row

MAX_FAILURES_IN_A_ROW = 3  # submissions in a row the grader failed on: then the machine, not they, is at fault
FIX = 'Fix that and run the same command again (docs/grading-at-scale.md, "The sandbox", says what each layer needs).'


class GraderFailed(Exception):
    """The grader failed on one job for reasons of its own (its kernel never started, its worker died)."""


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
    wrong = {name: verdict for name, verdict in row.results.items() if verdict[0] != NOT_ATTEMPTED}
    if wrong:
        said = "; ".join(f"{name}: {' '.join(filter(None, verdict))}" for name, verdict in wrong.items())
        raise GraderUnusable(
            'the pre-flight check failed: a trivial notebook was not judged "not attempted", so nothing was graded '
            f"and no grades were written. It got {said}. {row.note or row.error}\n{FIX}"
        )


class Streak:
    """The submissions the grader failed on in a row; add raises GraderUnusable when there are too many."""

    def __init__(self, limit=MAX_FAILURES_IN_A_ROW):
        self.limit, self.failed = limit, []

    def add(self, name, failure):
        """Count one finished submission: failure is why the grader failed on it, or "" when it was graded."""
        self.failed = [*self.failed, (name, failure)] if failure else []
        if len(self.failed) >= self.limit:
            names = ", ".join(name for name, _ in self.failed)
            raise GraderUnusable(
                f"stopped: the grader failed on {len(self.failed)} submissions in a row ({names}), so the fault is "
                f"the grader's, not theirs; only the grades decided before it stopped were written, the rest 'not graded'. "
                f"Last cause: {failure}\n{FIX}"
            )
