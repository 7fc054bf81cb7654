"""Property tests of the grader on whole notebooks (issue 43): hostile kernels drawn from classes of behaviour, each
graded as a submission is (run.grade_one: a grader worker, the kernel's client process, the sandbox) and followed on
the same grader worker by an honest neighbour, asserting the invariants whatever is drawn:

- every row is its own: the hostile notebook's row names it, and no failure of its job is the grader's (GraderFailed,
  which alone stops a run, is never raised while the canary passes: the run completes);
- the honest neighbour keeps its point;
- the trusted grader worker's peak memory stays within its bound (the light notebooks export a few kilobytes, so the
  bound is worker.BASE_BYTES: whatever the kernel sends is received in the client process, never here).

The kernels are light (numpy, no TensorFlow: a grading takes seconds); the classes, the stage each strikes at, and
the sizes are drawn by hypothesis. The counts of cases tried are printed (pytest -s). The grader's data set is a tiny
copy of the lab's (its first four training and two test images, DAE_DATA_DIR), which the honest data cell reads with
numpy: the data check judges x_train and x_test against the data set the grader loads."""

import collections
import threading

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import checks
from grading import preflight, run, sandbox, worker
from grading_support import needs_sandbox

pytestmark = [pytest.mark.heavy, needs_sandbox]

COUNTS = collections.Counter()  # (class, the hostile row's data verdict) -> cases
TIMEOUT_S = 60  # each notebook's time limit (none of these hangs: each class ends on its own)
TINY = {"train": 4, "t10k": 2}  # images of each IDX file kept in the tiny data set
HONEST = """import gzip, os
import numpy as np
def rows(name):
    with gzip.open(os.path.join(os.environ["DAE_DATA_DIR"], name), "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype("float32") / 255
x_train, x_test = rows("train-images-idx3-ubyte.gz"), rows("t10k-images-idx3-ubyte.gz")"""
SEND = "k = get_ipython().kernel\n"
SIZES = (10**6, 70 * 10**6)  # {} items in one message: 3 MB, and 210 MB (the issue's: 6.15 GiB in the old worker)
ERRORS = ("ValueError", "type(chr(0x1F600) * 10**5, (Exception,), {})")  # an error's name and value, both huge
LIES = (
    "{'kind': 'array', 'file': '0.npy'}",
    "10**309",
    "[[[[[]]]]]",
    "'x' * 10**6",
)  # what a forged manifest says  # the kernel's own session and sockets, as a hostile cell reaches them
HOSTILE = {  # class -> cell source, from one drawn number n (a size, a count, a name's variant)
    "forged signature": lambda n: (
        SEND + "from jupyter_client.session import Session\n"
        "bad = Session(key=b'forged', username=k.session.username, session=k.session.session)\n"
        f"bad.send(k.{['iopub_socket', 'iopub_socket', 'shell_stream'][n % 3]}, 'stream', "
        "{'name': 'stdout', 'text': 'hi'}, parent=k.get_parent())\nimport time; time.sleep(0.5)"
    ),
    "huge message": lambda n: (
        SEND
        + f"blob = b'{{\"data\": {{}}, \"metadata\": {{}}, \"x\": [' + b'{{}},' * {SIZES[n % len(SIZES)]} + b'{{}}]}}'\n"
        "k.session.send(k.iopub_socket, 'display_data', blob, parent=k.get_parent())\ndel blob\nimport time; time.sleep(1)"
    ),
    "endless messages": lambda n: (
        f"import time\nend = time.monotonic() + {1 + n % 3}\nwhile time.monotonic() < end:\n    print('x' * 4096)"
    ),
    "malformed frames": lambda n: (
        SEND + "import zmq\n"
        f"k.iopub_socket.send_multipart([b'<IDS|MSG>', b'', b'{{' * {n % 5000}, b'x', b'', b''])\n"
        "import time; time.sleep(0.5)"
    ),
    "full space": lambda n: (
        "import os\ntry:\n"
        f"    for i in range({10**6}):\n        open(f'f{{i}}', 'w').close()\nexcept OSError:\n    pass"
    ),
    "locked folder": lambda n: f"import os\nos.chmod('.', 0o{[500, 0, 100][n % 3]})",
    "planted export": lambda n: (
        "import os\n"
        + "\n".join(f"os.symlink('/etc', 'export-{i}')" for i in range(1, 12))
        + (f"\nos.mkdir('challenge-{n % 12}')" if n % 2 else "")
    ),
    "exit": lambda n: ["import os; os._exit(3)", "exit()", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"][
        n % 3
    ],
    "lying export": lambda n: (
        "import grading.export as e\n"
        "def save(ns, names, folder):\n    import os, json\n    os.makedirs(folder, exist_ok=True)\n"
        "    open(os.path.join(folder, 'manifest.json'), 'w').write(json.dumps("
        f"{{name: {LIES[n % len(LIES)]} for name in names}}))\ne.save = save"
    ),
    "huge error": lambda n: f"raise {ERRORS[n % len(ERRORS)]}(chr({[0x1F600, 0x200B, 0x78][n % 3]}) * 10**6)",
    "lying numbers": lambda n: (
        f"import numpy as np\nx_train = np.full((4, 784), {['np.inf', 'np.nan', '1e308', '-0.0'][n % 4]})"
    ),
}
STAGES = ("before its first check", "after its first check", "before its last check")  # (cells after it never run)


def notebook(hostile=None, stage=STAGES[1]):
    """A light notebook: the honest data cell, check("data"), every other check; the hostile cell at stage. The other
    tasks are "not attempted" (no TensorFlow in the kernel): only "data" earns a point."""
    cells = [HONEST, 'check("data")', *(f'check("{task}")' for task in checks.TASKS[1:])]
    if hostile is not None:
        cells.insert({STAGES[0]: 1, STAGES[1]: 2, STAGES[2]: len(cells) - 1}[stage], hostile)
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    return nbformat.writes(nb).encode("utf-8")


def tiny_dataset(folder):
    """Write the lab's first TINY images and labels of each split into folder as the four IDX files; return it."""
    import gzip
    import struct

    import helpers

    for name in helpers.IDX_FILES:
        data = helpers.read_idx(helpers.find_data_dir() / name)[: TINY[name.split("-")[0]]]
        header = struct.pack(f">BBBB{data.ndim}I", 0, 0, 0x08, data.ndim, *data.shape)
        with gzip.open(folder / name, "wb") as f:
            f.write(header + data.tobytes())
    return folder


@pytest.fixture(scope="module")
def grading(tmp_path_factory):
    """grade(name, notebook) -> (Row, the grader worker's peak memory or 0 where it ended); counts printed after.
    The grader and its kernels read the tiny data set (DAE_DATA_DIR); grader workers are started afresh with it."""
    data = tiny_dataset(tmp_path_factory.mktemp("tiny-data"))
    data.chmod(0o755)  # the sandbox users read it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAE_DATA_DIR", str(data))
        run.WORKERS.stop()  # an idle worker of an earlier test would judge on the lab's own data set
        run.WORKERS.resume()
        yield from graded_with()
    run.WORKERS.stop()
    run.WORKERS.resume()


def graded_with():
    """The grading fixture's body (the tiny data set in DAE_DATA_DIR)."""
    with sandbox.leased_slot(0) as slot:  # the machine's graders share the sandbox users: lease one, as run does
        box = run.local_sandbox(slot + 1)
        options = {"sandbox": box, "timeout": TIMEOUT_S, "lab_dir": run.LAB_DIR, "limits": sandbox.Limits()}

        def grade(name, data):
            row = run.grade_one(name, data, run.load_tasks(), options, slot)
            held = run.WORKERS.idle.get((threading.get_ident(), str(run.LAB_DIR), box.space))
            return row, worker.peak(held[0].pid) if held else 0

        yield grade
    for (kind, outcome), count in sorted(COUNTS.items()):
        print(f"{kind}: {count} {outcome}")


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(kind=st.sampled_from(sorted(HOSTILE)), stage=st.sampled_from(STAGES), n=st.integers(0, 70 * 10**6))
@example(kind="huge message", stage=STAGES[1], n=1)  # the 210 MB message: 6 GiB in the worker before
@example(kind="forged signature", stage=STAGES[1], n=0)  # "not graded: the grader failed" before, retried, never kept
def test_a_hostile_notebook_costs_only_its_own_row(grading, kind, stage, n):
    try:
        row, hostile_peak = grading("hostile", notebook(HOSTILE[kind](n), stage))
    except preflight.GraderFailed as err:  # the one failure that stops a run: never while the canary passes
        pytest.fail(f"{kind} {stage} stopped the run: {err}")
    assert row.name == "hostile" and row.graded, row
    if stage == STAGES[1]:  # decided before the hostile cell ran: kept, whatever happened after
        assert row.results["data"][0] == "passed", row.results["data"]
    honest, honest_peak = grading("honest", notebook())
    assert honest.results["data"][0] == "passed", honest.results["data"]
    assert {status for task, (status, _) in honest.results.items() if task != "data"} == {"not attempted"}
    assert max(hostile_peak, honest_peak) <= worker.BASE_BYTES, (hostile_peak, honest_peak)
    COUNTS[kind, f"{stage}: data {row.results['data'][0]}"] += 1
