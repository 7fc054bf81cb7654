"""What a check decides: the Result it returns, the exceptions the judgements raise to decide it, and `require`, the
one rule for "not attempted"."""

from typing import NamedTuple

STATUSES = ("passed", "not attempted", "failed", "blocked")  # blocked: an earlier task must be fixed first


class Result(NamedTuple):
    """How one check went: a status of STATUSES; message says why or what to do (for "blocked": which task to fix first)."""

    status: str
    message: str

    def _ipython_display_(self):
        """Show nothing when a notebook cell ends in check(...): check has already printed the line."""

    def line(self, name):
        """The one line `check` prints, e.g. 'noisy_data: failed - ...'."""
        if self.status == "passed":
            return f"{name}: passed"
        if self.status == "not attempted":
            return f"{name}: not attempted yet ({self.message})"
        if self.status == "blocked":
            return f"{name}: blocked - {self.message}"
        return f"{name}: failed - {self.message}"


class Failed(Exception):
    """A check found a mistake; the message says how to fix it."""


class NotAttempted(Exception):
    """The task's variables are not defined yet."""


class Blocked(Exception):
    """The task cannot be judged until an earlier task is fixed; the message says which and why."""

    def __init__(self, task, message):
        super().__init__(
            message if message.startswith("fix the ") else f"fix the {task} task first: {pointed(task, message)}"
        )


class Suspect(Failed):
    """A mistake that an earlier task's mistake may have caused: reported as such when an earlier task fails."""


def pointed(task, hint):
    """A hint that ends by pointing back to the card that teaches it: '...; see the `noisy_data` card'."""
    return hint if "` card" in hint else f"{hint}; see the `{task}` card"


def require(ns, *names):
    """Raise NotAttempted naming the task's variables that are not defined yet."""
    missing = [name for name in names if name not in ns]
    if missing:
        names = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        raise NotAttempted(f"define {names}")
