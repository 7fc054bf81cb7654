"""The student notebook generator: index.ipynb and index_files/ match solution.ipynb, leak no answers, refuse bad markers."""

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

import checks  # noqa: E402
import make_student  # noqa: E402

SOLUTION, INDEX, FIGURE_DIR = ROOT / "solution.ipynb", ROOT / "index.ipynb", ROOT / make_student.FIGURE_DIR
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CHECK_CELL = re.compile(r'check\("\w+"\);?')
CARD = re.compile(r"\*\*Task `(\w+)`\*\*")


def structure(nb):
    """What the generator decides, without what running it adds: (type, id, source, tags) per cell."""
    return [(c.cell_type, c.get("id"), c.source, c.get("metadata", {}).get("tags", [])) for c in nb.cells]


def notebook(*cells):
    """A notebook of ("code"|"markdown", source[, tags]) cells."""
    nb = nbformat.v4.new_notebook()
    for kind, source, *tags in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = tags[0]
        nb.cells.append(cell)
    return nb


def solution_lines(nb):
    """Every line inside a marked region of the notebook's code cells (markers excluded)."""
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines() if cell.cell_type == "code" else []:
            kind = make_student.marker(line)
            if kind:
                inside = kind == make_student.BEGIN
            elif inside:
                lines.append(line.strip())
    return lines


# ---------------------------------------------------------------- the committed files


def test_index_is_generated_from_the_solution(solution, index):
    """Drift: regenerate in memory; run `make student` when this fails."""
    assert structure(make_student.make_student(solution)) == structure(index)
    assert index.metadata.kernelspec == solution.metadata.kernelspec


WORKED_EXAMPLE = "regular_autoencoder"  # the one task shown complete, in the markdown above its card (issue 21)


def test_no_solution_code_leaks_into_index(solution, index):
    """No answer line appears in the student notebook, apart from the worked example's, which is shown on purpose."""
    shown = {line.strip() for region in task_regions(solution)[WORKED_EXAMPLE] for line in region.splitlines()}
    lines = [line for line in solution_lines(solution) if re.search(r"[A-Za-z0-9]", line) and line not in shown]
    assert len(lines) > 15
    student_lines = {line.strip() for cell in index.cells for line in cell.source.splitlines()}
    assert [line for line in lines if line in student_lines] == []


def test_the_worked_example_is_shown_complete_above_its_card(solution, index):
    """The regular autoencoder's answer is the worked example: every line of it sits in the markdown cell above the
    card (so the part-4 leak test, which reads the card, still covers the card itself)."""
    card = next(number for number, cell in enumerate(index.cells) if f"**Task `{WORKED_EXAMPLE}`**" in cell.source)
    example = index.cells[card - 1]
    assert example.cell_type == "markdown" and "worked example" in example.source
    code = re.search(r"```python\n(.*?)```", example.source, flags=re.DOTALL).group(1)
    assert [region.strip() for region in task_regions(solution)[WORKED_EXAMPLE]] == [code.strip()]


def test_index_has_a_placeholder_per_answer_and_no_markers(solution, index):
    regions = sum(
        cell.source.count(make_student.BEGIN)
        for cell in solution.cells
        if make_student.SOLUTION_ONLY not in make_student.tags(cell)
    )
    text = "\n".join(cell.source for cell in index.cells)
    assert text.count(make_student.PLACEHOLDER) == regions > 0
    assert "SOLUTION" not in text


def test_index_drops_solution_only_cells_and_tags(solution, index):
    ids = {cell.id for cell in index.cells}
    for cell in solution.cells:
        assert (cell.id in ids) == (make_student.SOLUTION_ONLY not in make_student.tags(cell))
    tags = {tag for cell in index.cells for tag in make_student.tags(cell)}
    assert not tags & {make_student.SOLUTION_ONLY, make_student.STUDENT_ONLY}


def test_index_stores_only_its_own_run_outputs(index):
    """Stored outputs come from executing the blank notebook: no execution timings, every check not attempted, and no
    execution count beside a cell holding only the placeholder (it is not run)."""
    code = [cell for cell in index.cells if cell.cell_type == "code"]
    blank = [cell for cell in code if make_student.blank(cell)]
    assert len(blank) >= 9 and all(cell.source == make_student.PLACEHOLDER for cell in blank)
    assert [(cell.execution_count, cell.outputs) for cell in blank] == [(None, [])] * len(blank)
    run = [cell.execution_count for cell in code if not make_student.blank(cell)]
    assert run == list(range(1, len(run) + 1))
    checks_seen = 0
    for cell in index.cells:
        assert set(cell.metadata) <= {"tags"}
        if cell.cell_type == "code" and CHECK_CELL.fullmatch(cell.source):
            text = "".join(output.get("text", "") for output in cell.outputs)
            assert re.fullmatch(r"\w+: not attempted yet \(define [\w ,]+\)\n", text), text
            checks_seen += 1
    assert checks_seen == len(checks.TASKS) + len(checks.OPTIONAL)


def test_every_check_passes_in_the_executed_solution(solution):
    """Stored outputs of the answer key: each check cell printed 'passed' (re-run `make lab` if not)."""
    lines = [
        "".join(o.get("text", "") for o in c.outputs)
        for c in solution.cells
        if c.cell_type == "code" and CHECK_CELL.fullmatch(c.source)
    ]
    core, optional = lines[: len(checks.TASKS)], lines[len(checks.TASKS) :]
    assert core == [f"{task}: passed\n" for task in checks.TASKS]
    assert [line.split(" - ")[0] for line in optional] == [f"{task}: passed" for task in checks.OPTIONAL]


def test_expected_output_text_comes_from_the_solution_run(solution):
    """Each line in a student-only cell's code block appears in the stored outputs of the code cell above it."""
    previous_output, checked = "", 0
    for cell in solution.cells:
        if cell.cell_type == "code":
            texts = [o.get("text", "") for o in cell.outputs] + [
                o.get("data", {}).get("text/plain", "") for o in cell.outputs
            ]
            previous_output = re.sub(r"\s+", " ", ANSI.sub("", "".join(texts)))
        elif make_student.STUDENT_ONLY in make_student.tags(cell):
            for block in re.findall(r"```\n(.*?)```", cell.source, flags=re.DOTALL):
                for line in block.splitlines():
                    assert re.sub(r"\s+", " ", line.strip()) in previous_output, (cell.id, line)
                    checked += 1
    assert checked >= 8


def test_figures_are_the_solutions_stored_images(solution):
    figures = make_student.find_figures(solution)
    assert set(figures) == set(make_student.FIGURES.values())
    for name, png in figures.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (FIGURE_DIR / name).read_bytes() == png, (
            f"{name} differs from solution.ipynb's figure: run `make student`"
        )


def test_every_figure_is_referenced_and_every_reference_resolves(index):
    # The notebook's links are relative to the repository root, each page's to its own folder.
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = [(ROOT, cell.source) for cell in index.cells if cell.cell_type == "markdown"]
    texts += [(page.parent, page.read_text()) for page in pages]
    links = [(folder, link) for folder, text in texts for link in IMAGE_LINK.findall(text)]
    local = [(folder, link) for folder, link in links if not re.match(r"\w+://", link)]
    assert [link for folder, link in local if not (folder / link).is_file()] == []
    referenced = {(folder / link).resolve() for folder, link in local}
    assert [path.name for path in sorted(FIGURE_DIR.iterdir()) if path.resolve() not in referenced] == []
    student_links = {
        link for cell in index.cells if cell.cell_type == "markdown" for link in IMAGE_LINK.findall(cell.source)
    }
    assert {f"{make_student.FIGURE_DIR}/{name}" for name in make_student.FIGURES.values()} <= student_links


# ---------------------------------------------------------------- the transformation


def test_marked_regions_become_placeholders_and_given_lines_stay():
    source = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\nfor i in x:\n    ### BEGIN SOLUTION\n    d = i\n    ### END SOLUTION"
    assert make_student.strip_solution(source, 1) == "a = 1\n# Your code here\nc = 3\nfor i in x:\n    # Your code here"


def test_cells_are_cleared_tagged_cells_handled_and_output_is_deterministic():
    nb = notebook(
        ("code", "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION", ["nbval-ignore-output"]),
        ("code", "secret = 1", ["solution-only"]),
        ("markdown", "Expected: 2", ["student-only"]),
        ("markdown", "# Title"),
    )
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nb.cells[0].execution_count = 7
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    student = make_student.make_student(nb)
    assert [(c.cell_type, c.source, c.metadata) for c in student.cells] == [
        ("code", "x = 1\n# Your code here", {"tags": ["nbval-ignore-output"]}),
        ("markdown", "Expected: 2", {}),
        ("markdown", "# Title", {}),
    ]
    assert student.cells[0].outputs == [] and student.cells[0].execution_count is None
    assert make_student.notebook_bytes(make_student.make_student(nb)) == make_student.notebook_bytes(student)


def test_only_placeholder_cells_count_as_blank():
    assert make_student.blank(nbformat.v4.new_code_cell("# Your code here"))
    assert make_student.blank(nbformat.v4.new_code_cell("    # Your code here\n\n# another comment"))
    assert not make_student.blank(nbformat.v4.new_code_cell("NOISE_FACTOR = 0.5\n# Your code here"))
    assert not make_student.blank(nbformat.v4.new_code_cell('check("data")'))


def test_the_repository_solution_gives_byte_identical_output_twice(solution):
    first = make_student.notebook_bytes(make_student.make_student(solution))
    assert make_student.notebook_bytes(make_student.make_student(nbformat.read(SOLUTION, as_version=4))) == first


@pytest.mark.parametrize(
    "cells, number, message",
    [
        ([("code", "a = 1"), ("code", "### BEGIN SOLUTION\nb = 2")], 2, "without a matching ### END SOLUTION"),
        ([("code", "b = 2\n### END SOLUTION")], 1, "without a ### BEGIN SOLUTION before it"),
        (
            [("markdown", "x"), ("code", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION")],
            2,
            "nested",
        ),
        ([("code", "a"), ("code", "b"), ("markdown", "Hint:\n### BEGIN SOLUTION\nsecret")], 3, "in a markdown cell"),
        ([("code", "a", ["solution-only", "student-only"])], 1, "tagged both"),
    ],
    ids=["unclosed", "unopened", "nested", "in-markdown", "both-tags"],
)
def test_bad_markers_are_refused_with_the_cell_number_and_nothing_is_written(tmp_path, capsys, cells, number, message):
    nb = notebook(*cells)
    with pytest.raises(make_student.SolutionError, match=rf"^cell {number}: .*{re.escape(message)}"):
        make_student.make_student(nb)
    solution_path, output = tmp_path / "solution.ipynb", tmp_path / "index.ipynb"
    nbformat.write(nb, solution_path)
    assert make_student.main(["--solution", str(solution_path), "--output", str(output), "--no-execute"]) == 1
    assert f"cell {number}:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solution.ipynb"]


def test_a_solution_without_stored_figures_is_refused(tmp_path, solution):
    blank = nbformat.from_dict(solution)
    for cell in blank.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    path = tmp_path / "solution.ipynb"
    nbformat.write(blank, path)
    assert make_student.main(["--solution", str(path), "--output", str(tmp_path / "index.ipynb"), "--no-execute"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solution.ipynb"]


def test_the_command_writes_the_notebook_and_figures(tmp_path):
    """`tools/make_student.py` end to end, without the (slow) execution."""
    output = tmp_path / "index.ipynb"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "make_student.py"),
            "--solution",
            str(SOLUTION),
            "--output",
            str(output),
            "--no-execute",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "index.ipynb: " in done.stdout
    assert structure(nbformat.read(output, as_version=4)) == structure(nbformat.read(INDEX, as_version=4))
    assert sorted(p.name for p in (tmp_path / "index_files").iterdir()) == sorted(make_student.FIGURES.values())
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind


# ---------------------------------------------------------------- the cards specify, they do not dictate

KEYWORD_NAME = re.compile(r"(?<=[(,])[A-Za-z_]\w*=(?!=)")


def squash(text):
    """Text without spaces, with one quote style and without keyword names (`f(a, n=1)` -> `f(a,1)`)."""
    return KEYWORD_NAME.sub("", re.sub(r"\s+", "", text).replace("'", '"'))


def statements(region):
    """What a card could copy from a solution region, as source text: each simple statement, each assigned value,
    each call with arguments, each method call without its object (`.predict(x_test, verbose=0)`, the templated form) and each
    tuple or list of two or more names (`(x_test_noisy, x_test)`, the training pairs)."""
    found = set()
    for node in ast.walk(ast.parse(textwrap.dedent(region))):
        if isinstance(node, ast.stmt) and not hasattr(node, "body"):
            found.add(ast.unparse(node))
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            found.add(ast.unparse(node.value))
        if isinstance(node, ast.Call) and (node.args or node.keywords):  # `f()` alone names a function, no more
            found.add(ast.unparse(node))
            if isinstance(node.func, ast.Attribute):
                found.add(ast.unparse(node)[len(ast.unparse(node.func.value)) :])
        if isinstance(node, (ast.Tuple, ast.List)) and sum(isinstance(item, ast.Name) for item in node.elts) >= 2:
            found.add(ast.unparse(node))
    return found


def leaks(text, regions):
    """The statements of the solution regions that text contains, compared after squash."""
    squashed = squash(text)
    return sorted({s for region in regions for s in statements(region) if squash(s) in squashed})


def regions_of(cell):
    """The source of each marked region of a code cell."""
    return re.findall(
        rf"^[ \t]*{make_student.BEGIN}.*?\n(.*?)^[ \t]*{make_student.END}", cell.source, flags=re.DOTALL | re.MULTILINE
    )


def task_regions(solution):
    """{task: the solution regions of the code cells from its card to its check call}."""
    found, task = {}, None
    for cell in solution.cells:
        if cell.cell_type == "markdown":
            task = next(iter(CARD.findall(cell.source)), task)
        elif task is not None:
            if CHECK_CELL.fullmatch(cell.source):
                task = None
            else:
                found.setdefault(task, []).extend(regions_of(cell))
    return found


def card_texts(nb):
    """{task: the markdown of the cell holding its task card}."""
    return {
        task: cell.source for cell in nb.cells if cell.cell_type == "markdown" for task in CARD.findall(cell.source)
    }


def test_the_leak_finder_sees_through_spaces_quotes_and_keyword_names():
    region = (
        'noisy = helpers.add_noise(x_train, NOISE_FACTOR, rng=rng)\nfig = helpers.plot_rows([x_test], ["clean"], n=10)'
    )
    assert "helpers.add_noise(x_train, NOISE_FACTOR, rng=rng)" in leaks(
        "Call `helpers.add_noise( x_train,NOISE_FACTOR, rng )`.", [region]
    )
    assert leaks("`fig = helpers.plot_rows([x_test], ['clean'], 10)`", [region]) != []
    assert leaks("`helpers.add_noise(images, noise_factor, rng)`: noisy copies of images", [region]) == []
    assert leaks("validate on `(x_test_noisy, x_test)`", ["h = m.fit(a, b, validation_data=(x_test_noisy, x_test))"])
    assert leaks("`model.predict(x_test, verbose=0)` for each model", ["codes = encoder.predict(x_test, verbose=0)"])


def test_no_core_card_and_not_the_helpers_table_states_an_answer(solution, index):
    """Cards say what to build (names, shapes, settings, maths); the student writes the line (issue 21)."""
    regions, cards = task_regions(solution), card_texts(index)
    assert sorted(regions) == sorted(checks.TASKS), "every core task has solution code after its card"
    found = {task: leaks(cards[task], regions[task]) for task in checks.TASKS}
    table = next(c.source for c in index.cells if c.cell_type == "markdown" and "Helpers you can use" in c.source)
    found["helpers table"] = leaks(table, [region for task in checks.TASKS for region in regions[task]])
    assert {task: lines for task, lines in found.items() if lines} == {}
