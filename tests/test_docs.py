"""The README and docs against the code: every file they name exists, and the option lists of
`vs-sr upscale`, `batch` and `studio` in the README name every option those commands have."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from vs_sr.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "engines" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FOLDERS = ("vs_sr", "tests", "scripts", "docs", "engines", "examples")


def named_paths(text: str) -> set[str]:
    """Repository paths in `code` spans and in Markdown links (web addresses and anchors aside), and
    documents named by their bare file name in the prose ("see batch.md")."""
    spans = re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(([^)\s]+)\)", text)
    documents = re.findall(r"(?<![\w/.-])([\w-]+\.md)\b", text)
    return {span for span in spans if span.split("/", 1)[0] in FOLDERS and "/" in span} | set(documents)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_file_a_doc_names_exists(doc):
    relative_to = ROOT if doc.parent == ROOT or doc.parent.name in FOLDERS else doc.parent
    missing = [path for path in named_paths(doc.read_text(encoding="utf-8"))
               if not any((base / path).exists() or list(base.glob(path)) for base in (ROOT, relative_to, doc.parent))]
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def options(*command: str) -> dict[str, set[str]]:
    """Each option of a command, by its long name, with all its spellings (-q and --quiet)."""
    parser = build_parser()
    for name in command:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return {max(action.option_strings, key=len): set(action.option_strings) for action in parser._actions
            if action.option_strings and "--help" not in action.option_strings and action.help != argparse.SUPPRESS}


def listed(start: str, end: str) -> set[str]:
    """The options named in the README between two phrases (`--width/--height`, `-q` count)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    begin = text.index(start)
    return set(re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", text[begin:text.index(end, begin)]))


def unlisted(command: dict[str, set[str]], names: set[str]) -> set[str]:
    return {option for option, spellings in command.items() if not spellings & names}


def test_the_readme_lists_every_option_of_upscale_batch_and_studio():
    upscale = listed("Options (`vs-sr upscale --help` explains each)", "Numbers are checked before")
    not_in_batch = listed("Every `vs-sr upscale` option applies but", "(a batch")
    batch = listed("Added: `--jobs`", "A batch's output frames")
    studio = listed("Options: `--host`", "API: ")
    assert unlisted(options("upscale"), upscale) == set()
    assert unlisted(options("batch"), upscale | batch) - {"--json", "--output-dir"} == set()
    upscale_only = {option: spellings for option, spellings in options("upscale").items()
                    if option not in options("batch")}
    assert unlisted(upscale_only, not_in_batch) == set()  # what batch lacks is named ...
    assert {name for spellings in upscale_only.values() for name in spellings} >= not_in_batch  # ... and only that
    assert unlisted(options("studio"), studio) == set()
