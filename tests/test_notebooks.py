"""What a student and a real Jupyter client see: task cards, the helpers table, clean outputs, alt text, quiet start, `make lab`'s progress."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

import checks  # noqa: E402
import run_notebook  # noqa: E402

SOLUTION, INDEX = ROOT / "solution.ipynb", ROOT / "index.ipynb"
CARD = re.compile(r"\*\*Task `(\w+)`\*\*")
CHECK_CELL = re.compile(r'check\("(\w+)"\);?')


def cards(nb):
    """{task: (card text, the index of the card's cell)} for every markdown task card."""
    found = {}
    for number, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for task in CARD.findall(cell.source):
                found[task] = (cell.source, number)
    return found


def helpers_table(nb):
    """The markdown of the 'Helpers you can use' cell."""
    return next(
        cell.source for cell in nb.cells if cell.cell_type == "markdown" and "Helpers you can use" in cell.source
    )


# ---------------------------------------------------------------- task cards


@pytest.mark.parametrize("task", list(checks.DEFINES))
def test_each_tasks_card_names_every_name_its_check_reads(index, task):
    text, number = cards(index)[task]
    missing = [name for name in checks.DEFINES[task] if f"`{name}" not in text]
    assert missing == [], f"the card of {task} does not name {missing}"
    following = index.cells[number + 1 :]
    answer = next(cell for cell in following if cell.cell_type == "code")
    assert "# Your code here" in answer.source, "a card sits right above its task's code cell"
    checked = next(
        CHECK_CELL.fullmatch(cell.source).group(1)
        for cell in following
        if cell.cell_type == "code" and CHECK_CELL.fullmatch(cell.source)
    )
    assert checked == task


def test_cards_come_in_the_order_of_the_checks(index):
    assert list(cards(index)) == list(checks.TASKS)


@pytest.mark.parametrize("task, epochs", [("regular_autoencoder", 10), ("dae_training", 30)])
def test_training_cards_state_every_setting(index, task, epochs):
    text = cards(index)[task][0]
    for setting in (
        f"{epochs} epochs",
        "batch size 128",
        "shuffled",
        "validated on",
        "verbose=2",
        "adam",
        "binary cross-entropy",
    ):
        assert setting in text, (task, setting)


# The sentence of each card that states a concept a check's hint may send the student back to ("see the `<task>`
# card"): the hints name the concept, the card states it in plain words (issue 21).
CONCEPTS = {
    "data": ["one row of 784 pixels per image, values in [0, 1]"],
    "regular_autoencoder": ["784 inputs → 32-unit relu code → 784-unit sigmoid output", "clean → clean"],
    "reconstructions": ["the codes and reconstructions of the clean test images", "the first ten clean test images"],
    "noisy_data": [
        "Gaussian noise of standard deviation 0.5 added to each pixel, then clipped to [0, 1]",
        "Fresh noise for train and test",
        "the same shapes as the clean ones",
    ],
    "dae_model": ["784 inputs → 32-unit relu code → 784-unit sigmoid output", "adam and binary cross-entropy"],
    "dae_training": [
        "A denoising autoencoder sees a corrupted image and is scored against the original",
        "its inputs are the corrupted images and its targets the clean ones",
        "The validation pairs follow the same rule",
        "30 epochs, batch size 128, shuffled every epoch, validated on the test images",
    ],
    "predictions": ["the trained `dae`'s output for the noisy test images"],
    "view_results": ["rows of the same ten test images, noisy, denoised and clean, top to bottom"],
    "loss_curve": ["the DAE's training and validation loss per epoch"],
}


def test_every_card_states_the_concepts_its_hints_point_to(index):
    assert list(CONCEPTS) == list(checks.TASKS)
    flat = {task: " ".join(text.split()) for task, (text, _) in cards(index).items()}  # line breaks as spaces
    missing = {task: [c for c in concepts if c not in flat[task]] for task, concepts in CONCEPTS.items()}
    assert {task: found for task, found in missing.items() if found} == {}


def test_the_training_card_leaves_the_choice_of_inputs_and_targets_to_the_student(index):
    """The card names the arrays but never says which is the input and which the target (the hints catch that)."""
    text = cards(index)["dae_training"][0]
    assert re.findall(r"(?:inputs?|targets?)\W{0,3}`x_\w+`", text) == []
    assert re.findall(r"\(`?x_test_noisy`?,\s*`?x_test`?\)", text) == []
    assert all(f"`{name}`" in text for name in ("x_train", "x_train_noisy", "x_test", "x_test_noisy"))


def test_every_card_says_which_helper_or_that_it_is_by_hand(index):
    for task, (text, _) in cards(index).items():
        assert "helpers." in text or "by hand" in text.lower(), task


def test_the_loss_curve_is_its_own_section_before_the_discussion(index):
    headings = [
        line
        for cell in index.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    assert headings.index("## Plot the loss curve") < headings.index("## Discussion")
    assert "**Task `loss_curve`**" not in next(c.source for c in index.cells if "## Discussion" in c.source)


def test_the_helpers_table_introduces_every_helper_a_check_hint_names(index):
    table = helpers_table(index)
    strings = [
        node.value
        for module in sorted((ROOT / "checks").glob("*.py"))
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]  # the hints, not the code
    hinted = set(re.findall(r"helpers\.(\w+)", "\n".join(strings))) - {"py"}
    assert hinted, "the checks' hints name helpers"
    assert sorted(name for name in hinted if f"`helpers.{name}(" not in table) == []


def test_the_helpers_table_comes_before_the_first_task(index):
    position = next(
        i for i, c in enumerate(index.cells) if c.cell_type == "markdown" and "Helpers you can use" in c.source
    )
    assert position < min(number for _, number in cards(index).values())


def test_level_up_cards_name_their_levelup_helpers(index):
    sections = [
        cell.source for cell in index.cells if cell.cell_type == "markdown" and re.match(r"### \d\.", cell.source)
    ]
    assert len(sections) == 7
    for text in sections:
        assert "**Task (optional)" in text and "levelup." in text, text.splitlines()[0]
    faces = next(text for text in sections if text.startswith("### 5."))
    for setting in ("15 epochs", "batch size 16", "code size 32", "levelup.load_faces()", "NOISE_FACTOR", "lfw_subset"):
        assert setting in faces, setting
    anomaly = next(text for text in sections if text.startswith("### 6."))
    for setting in ("5 epochs", "batch size 128", "mean squared error", "quantile=0.95"):
        assert setting in anomaly, setting


def test_the_student_notebook_never_mentions_tools_students_do_not_run(index):
    text = "\n".join(cell.source for cell in index.cells)
    assert re.findall(r"nbval|\bCI\b|pytest|make test", text) == []


# ---------------------------------------------------------------- stored outputs


@pytest.mark.parametrize("path", [SOLUTION, INDEX], ids=["solution", "index"])
def test_no_stderr_or_error_is_stored(path):
    nb = nbformat.read(path, as_version=4)
    bad = [
        (number, output.get("name", output.output_type))
        for number, cell in enumerate(nb.cells, start=1)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error" or output.get("name") == "stderr"
    ]
    assert bad == []


def test_keras_progress_never_shows_more_steps_than_an_epoch_has(solution):
    """Training cells log with verbose=2 (or 0): one summary line per epoch, its step count the epoch's."""
    steps = [
        (int(done), int(total))
        for cell in solution.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        for done, total in re.findall(r"^(\d+)/(\d+) - ", output.get("text", ""), flags=re.MULTILINE)
    ]
    assert len(steps) >= 40
    assert [pair for pair in steps if pair[0] != pair[1]] == []
    for cell in solution.cells:
        assert not re.search(r"verbose\s*=\s*(1|\"auto\")", cell.source), cell.source


def test_every_stored_figure_has_alt_text(solution):
    images = [
        output
        for cell in solution.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) >= 11
    for output in images:
        alt = output.metadata.get("image/png", {}).get("alt", "")
        assert alt.startswith("Figure: ") and len(alt) > 20, alt
        assert 'alt="' in output.data["text/html"]


@pytest.mark.parametrize("path", [SOLUTION, INDEX], ids=["solution", "index"])
def test_html_export_gives_every_image_alt_text(path, monkeypatch):
    """`jupyter nbconvert --to html` (the lab template) warns about, and fills in, images without alt text."""
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    warnings = []
    monkeypatch.setattr(exporter.log, "warning", lambda message, *args: warnings.append(message % args))
    html, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
    images = BeautifulSoup(html, features="html.parser").find_all("img")
    assert warnings == []
    assert [img.get("alt") for img in images if "No description" in img.get("alt", "")] == []


# ---------------------------------------------------------------- real clients


def ipykernel_display_name():
    """The display name JupyterLab stores for the python3 kernel."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().get_kernel_spec("python3").display_name


@pytest.mark.parametrize("path", [SOLUTION, INDEX], ids=["solution", "index"])
def test_saving_in_jupyterlab_changes_nothing(path):
    """JupyterLab writes the running kernel's spec into the notebook on save: the stored one must already be it."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec == {"display_name": ipykernel_display_name(), "language": "python", "name": "python3"}
    assert nb.nbformat == 4 and nb.nbformat_minor == 5
    assert run_notebook.notebook_bytes(nb) == path.read_bytes()


def test_quiet_start_a_fresh_interpreter_importing_helpers_and_checks_prints_nothing_to_stderr():
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", "import helpers, checks"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stderr == ""


def tiny_notebook(path):
    """A three-cell notebook under two headings whose second cell prints a timing."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n## First part"),
        nbformat.v4.new_code_cell("x = 6 * 7\nprint(x)"),
        nbformat.v4.new_markdown_cell("## Second part\n### Details"),
        nbformat.v4.new_code_cell(
            "import time\nstart = time.perf_counter()\n"
            "print(f'took {time.perf_counter() - start:.6f} s; 469/469 - 1s - 2ms/step')"
        ),
        nbformat.v4.new_code_cell("x + 1"),
    ]
    nbformat.write(nb, path)


def test_run_notebook_shows_progress_and_a_summary_and_leaves_an_unchanged_notebook_byte_identical(tmp_path):
    path = tmp_path / "tiny.ipynb"
    tiny_notebook(path)
    command = [sys.executable, str(ROOT / "tools" / "run_notebook.py"), str(path)]
    first = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    lines = first.stdout.splitlines()
    assert lines[:3] == [
        "tiny.ipynb: cell 1 of 3 · First part",
        "tiny.ipynb: cell 2 of 3 · Second part › Details",
        "tiny.ipynb: cell 3 of 3 · Second part › Details",
    ]
    assert re.fullmatch(rf"{re.escape(str(path))}: 3 code cells run in \d+ s; outputs written back", lines[3])
    assert len(lines) == 4
    stored = path.read_bytes()
    nb = nbformat.reads(stored.decode(), as_version=4)
    assert all("execution" not in cell.metadata for cell in nb.cells)
    assert nb.metadata.kernelspec == run_notebook.KERNELSPEC
    second = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    assert second.stdout.splitlines()[-1].endswith("unchanged apart from timings, file left as it was")
    assert path.read_bytes() == stored


def test_timings_are_masked_but_other_changes_are_not():
    old = [nbformat.v4.new_output("stream", text="469/469 - 5s - 11ms/step - loss: 0.3744\n8 epochs in 36 s\n")]
    new = [nbformat.v4.new_output("stream", text="469/469 - 1s - 2ms/step - loss: 0.3744\n8 epochs in 41 s\n")]
    assert run_notebook.without_timings(old) == run_notebook.without_timings(new)
    other = [nbformat.v4.new_output("stream", text="469/469 - 1s - 2ms/step - loss: 0.3745\n8 epochs in 41 s\n")]
    assert run_notebook.without_timings(old) != run_notebook.without_timings(other)
    table = "| method | PSNR (dB) | training (s) |\n| --- | ---: | ---: |\n| deep | 18.10 | {} |"
    assert run_notebook.mask_table_seconds(table.format(36)) == run_notebook.mask_table_seconds(table.format(41))
    assert run_notebook.mask_table_seconds(table.format(36)) != run_notebook.mask_table_seconds(
        table.format(36).replace("18.10", "18.20")
    )


def test_make_lab_runs_the_solution_with_progress():
    lab = re.search(r"^lab:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE).group(1)
    assert "tools/run_notebook.py solution.ipynb" in lab and "--quiet" not in lab


# ---------------------------------------------------------------- the answer key on another backend


@pytest.mark.skipif(
    os.environ.get("DAE_ANSWER_KEY") != "core",
    reason="nbval runs the whole answer key; `make ci` asks for its core lab alone on JAX (DAE_ANSWER_KEY=core)",
)
def test_the_answer_keys_core_lab_runs_on_this_backend(solution, tmp_path):
    """The answer key up to the class challenge (before "Level up") runs on this backend with every check passing (the
    challenge's entry and the level-up cells run on every backend in `make test-all`; levelup.py's functions are
    unit-tested on each in CI)."""
    challenge = next(n for n, c in enumerate(solution.cells) if c.source.startswith("## The class challenge"))
    level_up = next(n for n, c in enumerate(solution.cells) if c.source.startswith("## Level up"))
    assert challenge < level_up
    solution.cells = solution.cells[:challenge]
    run_notebook.notebook_client(solution, ROOT).execute()
    said = "".join(
        output.get("text", "") for cell in solution.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert [line for line in said.splitlines() if line.endswith(": passed")] == [f"{t}: passed" for t in checks.TASKS]
