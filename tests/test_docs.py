"""The docs stay true: every relative link resolves, every command a code block shows names what exists."""

import re
import shlex
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
INTERPRETERS = re.compile(r"(?:.*/)?(?:python3?(?:\.\d+)?|bash|sh)")
WRAPPERS = {"time", "sudo", "env", "/usr/bin/time"}
FILE_ARGUMENT = re.compile(r"[\w.-]+(?:/[\w.-]+)*\.(?:py|ipynb|sh|txt|toml|ini|md)")
MAKE_RULE = re.compile(r"^([\w.-]+(?:[ \t]+[\w.-]+)*)[ \t]*:(?![=:])", re.MULTILINE)
PARSER = MarkdownIt("commonmark").enable("table")


def make_targets(root=ROOT):
    """The explicit targets the Makefile under root defines."""
    rules = MAKE_RULE.findall((root / "Makefile").read_text())
    return {target for rule in rules for target in rule.split() if not target.startswith(".")}


def slug(text):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page):
    """Every heading anchor of a markdown page, repeated headings numbered as GitHub does (-1, -2...)."""
    tokens = PARSER.parse(page.read_text())
    seen, found = {}, set()
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type == "heading_open":
            base = slug("".join(child.content for child in inline.children or []))
            found.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return found


def links(page):
    """The targets of every link and image in a markdown page, in order."""
    found = []
    for token in PARSER.parse(page.read_text()):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "image":
                found.append(child.attrs["src"])
    return found


def broken_links(page, root=ROOT):
    """Relative links of page that name no file in the repository, or no heading of the page they point to."""
    broken = []
    for link in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:|//", link, re.IGNORECASE):
            continue  # a web address or mailto: not the repository's to keep
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or not target.is_relative_to(root.resolve()):
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(root.resolve())}")
    return broken


def commands(page):
    """Each shell command (a list of words) in the page's bash, sh, shell or unlabelled fenced blocks."""
    found = []
    for token in PARSER.parse(page.read_text()):
        if token.type != "fence" or token.info.strip() not in SHELL_FENCES:
            continue
        text = re.sub(r"\\\n", " ", token.content)
        for line in text.splitlines():
            lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            command = []
            try:
                words = list(lexer)
            except ValueError as error:
                raise ValueError(
                    f"{page.name}: cannot read {line!r} as a shell command ({error}): label its block ```text"
                ) from error
            for word in words:
                if set(word) <= set(";&|"):
                    found.append(command)
                    command = []
                else:
                    command.append(word)
            found.append(command)
    return [command for command in found if command]


def bad_commands(page, root=ROOT):
    """What the page's commands name that does not exist: make targets, scripts, repository files, venv programs."""
    targets, bad = make_targets(root), []
    for command in commands(page):
        words = list(command)
        while words and ("=" in words[0] and not words[0].startswith("-") or words[0] in WRAPPERS):
            words.pop(0)  # VAR=value, time, sudo: the command comes after them
            while words and words[0].startswith("-"):
                words.pop(0)  # the wrapper's own options (time -v)
        if not words:
            continue
        program, args = words[0], words[1:]
        if program == "make":
            named = [word for word in args if "=" not in word and not word.startswith("-")]
            bad += [f"{' '.join(command)}: no make target {target!r}" for target in named if target not in targets]
        if program.startswith(".venv/bin/") and not (Path(sys.executable).parent / Path(program).name).exists():
            bad.append(f"{' '.join(command)}: {Path(program).name} is not installed in the venv")
        if INTERPRETERS.fullmatch(program) and args and not {"-m", "-c"} & set(args):
            script = next((word for word in args if not word.startswith("-")), None)
            if script and not (root / script).is_file():
                bad.append(f"{' '.join(command)}: no script {script}")
        for word in args:
            if FILE_ARGUMENT.fullmatch(word) and not (root / word).exists():
                bad.append(f"{' '.join(command)}: no file {word}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_command_names_what_exists(page):
    assert bad_commands(page) == []


def test_the_pages_and_their_commands_are_found():
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    expected = {"docs/students.md", "docs/instructors.md", "docs/grading-at-scale.md", "docs/benchmarks.md"}
    assert expected <= names
    shown = [command for page in PAGES for command in commands(page)]
    assert ["make", "lab"] in shown and ["make", "test"] in shown
    assert {"lab", "test", "ci", "student", "unit", "lint"} <= make_targets()


def test_the_readme_fits_on_one_screen():
    assert len((ROOT / "README.md").read_text().splitlines()) < 120


def test_broken_links_and_commands_are_reported(tmp_path):
    (tmp_path / "Makefile").write_text("lab: setup\n\techo lab\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n## A section: with punctuation\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#a-section-with-punctuation) [web](https://example.org/x.md) [self](#page)\n"
        "[gone](missing.md) [anchor](other.md#nowhere) ![figure](../figure.png) [outside](../../etc.md)\n\n"
        "```bash\nmake lab BACKEND=jax   # fine\nmake nope && python tools/absent.py\n"
        "PYTHONPATH=. .venv/bin/no-such-program run\n.venv/bin/python -m pytest tests/test_absent.py\n```\n\n"
        "```python\nmake nope\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading #nowhere in docs/other.md",
        "../figure.png: no such file",
        "../../etc.md: no such file",
    ]
    assert bad_commands(page, tmp_path) == [
        "make nope: no make target 'nope'",
        "python tools/absent.py: no script tools/absent.py",
        "python tools/absent.py: no file tools/absent.py",
        "PYTHONPATH=. .venv/bin/no-such-program run: no-such-program is not installed in the venv",
        ".venv/bin/python -m pytest tests/test_absent.py: no file tests/test_absent.py",
    ]
    (tmp_path / "figure.png").write_bytes(b"")
    assert "../figure.png: no such file" not in broken_links(page, tmp_path)
    page.write_text("```\nhelpers.py   the lab's constants\n```\n")
    with pytest.raises(ValueError, match="label its block"):
        commands(page)
