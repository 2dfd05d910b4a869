"""Every repository path the prose names exists, and every link to a heading finds it.

The prose: README.md, BENCHMARKS.md, docs/*.md (the whole text, and their relative
Markdown links), the comments of conf/**/*.yaml and pyproject.toml, and the docstrings and
comments of every .py file under src/, procedures/, models/, datasets/, bench/ and main.py
(code and other string literals are not read). A repository path is a token such as
`src/kd/loss.py`, `conf/procedure/distill.yaml:3` or `docs/distill.md#settings`: a line
suffix (`:3`, `:17-19`) and an anchor are stripped before the path is looked up. A link to
`<file>.md#anchor` must name a heading of that file (GitHub's slugs).

Reads files only: no TensorFlow, no project import.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY_FOLDERS = ("src", "procedures", "models", "datasets", "bench")
TOP = "src|procedures|models|datasets|bench|docs|tests|conf|hydra_plugins"

# `src/kd/loss.py`, `docs/distill.md#the-loss`, `README.md`, `../BENCHMARKS.md#speed`
PATH = re.compile(
    rf"(?<![\w/.\-])((?:\.\./)*(?:(?:{TOP})/[\w/.\-]*?\.(?:py|md|yaml)|README\.md|BENCHMARKS\.md))"
    r"(?![\w\-])(#[\w\-]+)?")
# [text](target) in Markdown: a relative link is resolved from the file's folder
LINK = re.compile(r"\]\(([^)\s]+)\)")


# --- the prose of each kind of file ----------------------------------------------------

def markdown_files(root: Path = ROOT) -> list[Path]:
    return [p for p in [root / "README.md", root / "BENCHMARKS.md", *sorted((root / "docs").glob("*.md"))]
            if p.exists()]


def yaml_comments(text: str) -> str:
    """The comment part of every line (after a `#` outside quotes, at the start or after a space)."""
    out = []
    for line in text.splitlines():
        quote = None
        for i, ch in enumerate(line):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1].isspace()):
                out.append(line[i + 1:])
                break
    return "\n".join(out)


def python_prose(text: str) -> str:
    """The docstrings (module, class, function) and the comments of a Python file."""
    parts = []
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                parts.append(doc)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            parts.append(token.string)
    return "\n".join(parts)


def prose_files(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(file, the text of it that is prose) for every file the test reads."""
    out = [(p, p.read_text(encoding="utf-8")) for p in markdown_files(root)]
    yamls = sorted((root / "conf").rglob("*.yaml")) if (root / "conf").exists() else []
    out += [(p, yaml_comments(p.read_text(encoding="utf-8"))) for p in yamls]
    if (root / "pyproject.toml").exists():
        out.append((root / "pyproject.toml", yaml_comments((root / "pyproject.toml").read_text(encoding="utf-8"))))
    pys = [p for folder in PY_FOLDERS if (root / folder).exists() for p in sorted((root / folder).rglob("*.py"))
           if "__pycache__" not in p.parts]
    if (root / "main.py").exists():
        pys.append(root / "main.py")
    out += [(p, python_prose(p.read_text(encoding="utf-8"))) for p in pys]
    return out


# --- headings -------------------------------------------------------------------------

def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped but - and _, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fence or not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


# --- the check ------------------------------------------------------------------------

def references(path: Path, text: str, root: Path = ROOT) -> list[tuple[str, Path, str | None]]:
    """(as written, the file it names, anchor or None) for every path the prose names."""
    out = []
    for m in PATH.finditer(text):
        written, anchor = m.group(1), m.group(2)
        base = path.parent if written.startswith("../") else root
        out.append((m.group(0), (base / written).resolve(), anchor[1:] if anchor else None))
    if path.suffix == ".md":
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address, or a heading of this page (not checked)
            file, _, anchor = target.partition("#")
            out.append((target, (path.parent / file).resolve(), anchor or None))
    return out


def bad_references(root: Path = ROOT) -> list[str]:
    """'<file>: <path> (why)' for every path that does not exist and every anchor not found."""
    bad = []
    cache: dict[Path, set[str]] = {}
    for path, text in prose_files(root):
        where = path.relative_to(root)
        for written, target, anchor in references(path, text, root):
            if not target.exists():
                bad.append(f"{where}: {written} (no such file)")
            elif anchor and target.suffix == ".md":
                if target not in cache:
                    cache[target] = anchors(target)
                if anchor not in cache[target]:
                    bad.append(f"{where}: {written} (no heading #{anchor} in {target.relative_to(root)})")
    return sorted(set(bad))


def test_every_named_path_and_anchor_exists():
    bad = bad_references()
    assert not bad, f"{len(bad)} path(s) in the prose name nothing:\n" + "\n".join(bad)


def test_the_check_catches_a_bad_path_and_a_bad_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "real.py").write_text('"""Uses src/real.py and src/gone.py."""\n# see docs/page.md#nowhere\n')
    (tmp_path / "docs" / "page.md").write_text("# `page`: a page\n\n## The loss\n\n[x](../BENCHMARKS.md#the-loss)\n")
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n\n## Speed\n")
    (tmp_path / "README.md").write_text("See docs/page.md#the-loss, BENCHMARKS.md#speed and tests/none.py:12.\n")
    assert bad_references(tmp_path) == [
        "README.md: tests/none.py (no such file)",
        "docs/page.md: ../BENCHMARKS.md#the-loss (no heading #the-loss in BENCHMARKS.md)",
        "src/real.py: docs/page.md#nowhere (no heading #nowhere in docs/page.md)",
        "src/real.py: src/gone.py (no such file)",
    ]


def test_slugs_follow_github():
    assert slug("`hns_train`: Hide-and-Seek") == "hns_train-hide-and-seek"
    assert slug("Encoding: joint against realx, 5 seeds") == "encoding-joint-against-realx-5-seeds"
    assert slug("How the defaults were chosen") == "how-the-defaults-were-chosen"
