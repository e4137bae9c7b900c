"""The README and docs stay true: every `unicorn ...` command they show parses with the real CLI (with and without
its optional parts), every script they name exists, every doc page they link exists, and the README stays short."""

import re
import shlex
from pathlib import Path

import pytest

from unicorn.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_lines(page: Path) -> list[str]:
    """The lines of a page's ```bash blocks, comments removed, continuation lines joined."""
    out, inside = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and line.strip():
            out.append(re.split(r"\s{2,}# ", line)[0].strip())
    return out


def variants(command: str) -> list[list[str]]:
    """The command with its [optional parts] left out, and with them in; `a|b` alternatives take the first."""

    def tokens(text: str) -> list[str]:
        out = [t.split("|")[0] if "|" in t and not t.startswith(("openai:", "http")) else t for t in shlex.split(text)]
        return [PLACEHOLDERS.get(t, t) for t in out]

    bare = re.sub(r"\s*\[[^\]]*\]", "", command)
    full = command.replace("[", " ").replace("]", " ")
    return [tokens(bare)[1:], tokens(full)[1:]]


PLACEHOLDERS = {"N": "8", "SIGMA": "0.1", "K": "2"}  # numbers a page writes as a name


def commands(page: Path) -> list[str]:
    parts = [part.strip() for line in shell_lines(page) for part in line.split("&&")]
    return [part for part in parts if part.startswith("unicorn ")]


COMMANDS = [(page.name, command) for page in PAGES for command in commands(page)]


@pytest.mark.parametrize("page,command", COMMANDS, ids=[f"{p}:{c[:40]}" for p, c in COMMANDS])
def test_every_documented_command_parses(page, command):
    parser = build_parser()
    for argv in variants(command):
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"{page}: `{command}` does not parse as {argv} (exit {e.code})")


def test_documented_scripts_and_links_exist():
    for page in PAGES:
        text = page.read_text()
        for script in re.findall(r"python (?:-m \S+ )?((?:bench|examples|scripts)/[\w/.-]+\.py)", text):
            assert (ROOT / script).is_file(), f"{page.name} names {script}, which does not exist"
        for link in re.findall(r"\]\(((?:docs/)?[\w.-]+\.md)\)", text):
            base = ROOT if page.name == "README.md" else page.parent
            assert (base / link).is_file(), f"{page.name} links {link}, which does not exist"


def test_the_readme_is_an_overview():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160
    commands = [line for line in shell_lines(ROOT / "README.md") if "scripts/install.sh" in line]
    assert commands[:2] == [
        "bash scripts/install.sh && unicorn run --out runs/default",
        'bash scripts/install.sh dev && python -m pytest -q -m "not slow"',
    ]
