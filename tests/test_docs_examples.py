"""The documentation site (docs/, mkdocs.yml) cannot rot.

- Every ```python block of docs/**/*.md runs. The blocks of one page run in order in one
  namespace (a page reads like a notebook), in a fresh temporary working directory, with
  matplotlib on Agg. A block is skipped only when the line before its fence is
  ``<!-- no-test: reason -->``.
- The command pages document every option of ``jaxlm <command> --help``, and the command lines
  shown in the docs use only options that exist.
- The formula page's transform table is the grammar's own (``jaxlm.io.grammar.transform_table``).
- ``mkdocs build --strict`` passes (when mkdocs is installed: ``pip install ".[docs]"``).
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NO_TEST = re.compile(r"<!--\s*no-test:\s*(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


def code_blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """Fenced code blocks of a Markdown text: ``(line, language, code, no_test_reason)``.

    ``line`` is the 1-based line of the first code line; the language is the first word of the
    fence's info string; ``no_test_reason`` is the reason of a ``<!-- no-test: ... -->`` comment
    on the last non-blank line before the fence (None when there is none).
    """
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, ticks, info = m["indent"], m["ticks"], m["info"].strip()
        prev = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        skip = NO_TEST.fullmatch(prev.strip())
        end = i + 1
        while end < len(lines) and not re.fullmatch(rf"{re.escape(indent)}{ticks[0]}{{{len(ticks)},}}[ \t]*",
                                                       lines[end]):
            end += 1
        body = "\n".join(ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[i + 1:end])
        blocks.append((i + 2, (info.split() or [""])[0].lower(), body, skip["reason"] if skip else None))
        i = end + 1
    return blocks


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def python_pages() -> list[Path]:
    return [p for p in doc_pages() if any(lang == "python" for _, lang, _, _ in code_blocks(p.read_text("utf-8")))]


def test_code_blocks_finds_python_blocks_and_no_test_markers():
    text = ("# t\n\n```python\nx = 1\n```\n\n<!-- no-test: needs a GPU -->\n```python\nraise SystemExit\n```\n"
            "\n```text\nnot code\n```\n\n   ```python\n   y = 2\n   ```\n")
    blocks = code_blocks(text)
    assert [(line, lang, code, why) for line, lang, code, why in blocks] == [
        (4, "python", "x = 1", None),
        (9, "python", "raise SystemExit", "needs a GPU"),
        (13, "text", "not code", None),
        (17, "python", "y = 2", None),
    ]


def test_docs_have_runnable_examples():
    """The site exists and most of its pages carry examples that this file runs."""
    pages = {p.relative_to(DOCS).as_posix() for p in python_pages()}
    for page in ("index.md", "getting-started.md", "guide/estimator.md", "guide/statistics.md",
                 "guide/formulas.md", "guide/files.md", "guide/scale.md", "guide/model-files.md",
                 "guide/exactness.md"):
        assert page in pages, f"docs/{page} has no ```python example"


def test_no_test_markers_are_few_and_explained():
    skipped = [(p.relative_to(DOCS).as_posix(), line, why) for p in doc_pages()
               for line, lang, _, why in code_blocks(p.read_text("utf-8")) if lang == "python" and why]
    assert len(skipped) <= 3, f"too many python blocks marked no-test: {skipped}"
    for page in doc_pages():  # a marker must sit right before a python fence (else it is a typo)
        text = page.read_text("utf-8")
        markers = len(NO_TEST.findall(text))
        used = sum(1 for _, lang, _, why in code_blocks(text) if lang == "python" and why)
        assert markers == used, f"docs/{page.relative_to(DOCS)}: a no-test marker is not right before a python block"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh working directory and a display-free matplotlib for one page's examples."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("page", python_pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples_run(page, sandbox):
    namespace = {"__name__": "__docs__"}
    for line, lang, code, why in code_blocks(page.read_text("utf-8")):
        if lang != "python" or why:
            continue
        # leading newlines make a traceback point at the line in the Markdown file
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)


# -- the command pages --------------------------------------------------------------------------
def _subparsers() -> dict:
    import argparse

    from jaxlm.cli.main import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def test_command_pages_document_every_option():
    commands = _subparsers()
    assert set(commands) == {p.stem for p in (DOCS / "cli").glob("*.md")}, "one page per command in docs/cli/"
    for name, parser in commands.items():
        page = (DOCS / "cli" / f"{name}.md").read_text("utf-8")
        missing = sorted(o for o in _options(parser) if f"`{o}" not in page)
        assert not missing, f"docs/cli/{name}.md does not document {missing} (see `jaxlm {name} --help`)"


def test_command_lines_in_docs_use_real_options():
    commands = _subparsers()
    seen = 0
    for page in doc_pages():
        for _, lang, code, _ in code_blocks(page.read_text("utf-8")):
            if lang not in ("sh", "bash", "text", "console"):
                continue
            for ln in code.splitlines():
                m = re.search(r"(?:^|\$ |&& )jaxlm (\w+)(.*)", ln)
                if m is None or m[1] not in commands:
                    continue
                seen += 1
                words = shlex.split(m[2].split("#")[0].replace("[", " ").replace("]", " "))
                used = {w.split("=")[0] for w in words if w.startswith("-")}
                unknown = sorted(used - _options(commands[m[1]]))
                assert not unknown, f"docs/{page.relative_to(DOCS)}: `jaxlm {m[1]}` has no option {unknown}: {ln}"
    assert seen >= 10


def test_formula_page_has_the_grammar_transform_table():
    from jaxlm.io.grammar import transform_table

    assert transform_table().strip() in (DOCS / "guide" / "formulas.md").read_text("utf-8")


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    env = dict(subprocess_env(), NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "linear-regression" / "index.html").is_file()
    html = (tmp_path / "site" / "reference" / "linear-regression" / "index.html").read_text("utf-8")
    assert "partial_fit" in html and "weights_kind" in html  # mkdocstrings rendered the docstrings


# -- pages that list what the code has ----------------------------------------------------------
def test_estimator_page_lists_every_parameter():
    import inspect

    from jaxlm.models.linear import LinearRegression

    page = (DOCS / "guide" / "estimator.md").read_text("utf-8")
    missing = [p for p in inspect.signature(LinearRegression).parameters if f"{p}=" not in page]
    assert not missing, f"docs/guide/estimator.md: add {missing} to the signature and the parameter notes"


def test_api_page_lists_every_public_name():
    import jaxlm

    page = (DOCS / "reference" / "jaxlm.md").read_text("utf-8")
    missing = [n for n in jaxlm.__all__ if n != "__version__" and f"`jaxlm.{n}`" not in page]
    assert not missing, f"docs/reference/jaxlm.md: add {missing} to the table of public names"
