"""The live board of a lesson: `tools/grade.py PATH --watch` grades the submissions folder again whenever what it holds
changes, until stopped (Ctrl-C), and keeps the challenge's board page current for a projector and for students.

Each round looks at the folder as the grader finds it (admit.find: the same notebooks, the same bytes). When a
notebook is new or changed since the last grading and has then held still for one look (a notebook still being
copied in is not graded half-written), it grades the folder (run.grade with `live`), holding back the notebooks that
are still changing (`hold`: graded in a later round, once they hold still; one rewritten every second never delays
the others): the results store skips every unchanged notebook, so only new and changed ones are run, one after
another at --jobs 1, and the board is rewritten as each entry is scored. The live board scores the hidden set's public part, and its page reloads itself; the final ranking,
on the rest, is what the same command writes without --watch at the end of the lesson (from the store: nothing is
graded again). The pre-flight notebook is graded before the first round only.
"""

import hashlib
import sys
import time
from pathlib import Path

from grading import admit, run
from grading.admit import UsageError

# Polled rather than told by the kernel (inotify, the watchdog package): a shared or network folder may send no
# events, and a notebook still being copied needs a second look anyway. A look reads and hashes every notebook
# (30 of 5 MB: about 0.3 s of CPU)
INTERVAL_S = 10  # between two looks at the folder
REFRESH_S = 30  # the live page reloads itself this often


def snapshot(path):
    """{name: digest of its bytes, or why it is refused} of the notebooks at path as the grader finds them; {} while
    the folder holds none (a lesson starts with an empty folder)."""
    try:
        found = admit.find(path, run.is_ignored)
    except UsageError:
        if Path(path).is_dir():
            return {}
        raise
    return {sub.name: sub.refused or hashlib.sha256(sub.data).hexdigest() for sub in found.submissions}


def watch(path, interval=INTERVAL_S, rounds=None, log=None, grade=run.grade, **options):
    """Grade path (run.grade, its options as given) whenever a notebook in it is new or changed and has then held still
    for one look (those still changing held back), every interval seconds, keeping the live board (REFRESH_S); until
    Ctrl-C, or after `rounds` looks. Return the last grading's result (run.grade's), or None where nothing was graded. Raises what run.grade raises, but for
    KeyboardInterrupt, which ends the watch (the finished results are kept in the store)."""
    log = log or sys.stderr
    say = (lambda text: None) if options.get("quiet") else (lambda text: print(text, file=log, flush=True))
    graded, previous, looked, result = None, {}, 0, None  # graded: {name: digest} as the last grading found them
    force = options.pop("force", False)  # regrades everything in the first round only
    say(f"Watching {path} every {interval:g} s for new and changed notebooks (Ctrl-C stops).")
    try:
        while rounds is None or looked < rounds:
            now = snapshot(path)
            looked += 1
            changed = {name for name, digest in now.items() if (graded or {}).get(name) != digest}
            still = {name for name in changed if previous.get(name) == now[name]}
            gone = set(graded or {}) - set(now)
            if still or (gone and now == previous):
                first = graded is None
                hold = changed - still
                result = grade(
                    path, live=REFRESH_S, preflight_first=first, force=force and first, hold=hold, log=log, **options
                )
                graded = {name: digest for name, digest in now.items() if name not in hold}
                say(
                    f"{time.strftime('%H:%M:%S')} board updated; watching for new and changed notebooks (Ctrl-C stops)."
                )
            previous = now
            if rounds is None or looked < rounds:
                time.sleep(interval)
    except KeyboardInterrupt:
        say(
            "Stopped watching. The live board scored the hidden set's public part: for the final ranking, run the "
            "same command without --watch (nothing is graded again)."
        )
    return result
