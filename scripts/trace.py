#!/usr/bin/env python3
"""Requirement trace: which tests name which requirement ID.

Reads the requirement IDs from ``docs/requirements.md`` (list items or headings that start with a
bold ID, e.g. ``- **U3** *Logical checks.* ...``; the italic text right after the ID is the short
title) and scans ``tests/**/*.py`` and ``src/**/*.py`` for test functions (``def test_...``, also
methods of test classes). A test names an ID when the ID is one of the ``_``-separated tokens of
its name after ``test``, case-insensitively: ``test_u3_tenkyo_rejects_name_change`` names U3,
``test_u1_u6_resend_is_duplicate`` names U1 and U6, ``test_d3`` names D3.

Writes ``docs/requirements-trace.md``: a summary, then one row per ID in document order with the
tests (``path::name`` or ``path::Class::name``, sorted) and a status. The output is deterministic.

Usage::

    python scripts/trace.py           # write docs/requirements-trace.md
    python scripts/trace.py --check   # exit 1 if the file is missing or out of date

Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "docs" / "requirements.md"
OUTPUT = ROOT / "docs" / "requirements-trace.md"
SCAN_DIRS = ("tests", "src")

#: A requirement line: optional list marker or heading hashes, then **ID**, then the rest.
_REQ_LINE = re.compile(r"^\s*(?:[-*+]\s+|#{1,6}\s+)?\*\*([A-Z]{1,2}\d{1,3})\*\*\s*[:.\-—–]?\s*(.*)$")
_TITLE = re.compile(r"^\*([^*]+)\*")
_TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(", re.MULTILINE)
_ID_TOKEN = re.compile(r"^[a-z]{1,2}\d{1,3}$")

SHORT_MAX = 90


def _short(rest: str) -> str:
    """The short title: the italic text after the ID, else the first sentence, trimmed."""
    rest = rest.strip()
    m = _TITLE.match(rest)
    text = m.group(1) if m else re.split(r"(?<=[.。])\s", rest, maxsplit=1)[0]
    text = re.sub(r"\s+", " ", text).strip().rstrip(".")
    if len(text) > SHORT_MAX:
        text = text[: SHORT_MAX - 1].rstrip() + "…"
    return text


def read_requirements(path: Path = REQUIREMENTS) -> list[tuple[str, str]]:
    """(ID, short title) in document order; the first occurrence of an ID wins."""
    seen: dict[str, str] = {}
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = _REQ_LINE.match(line)
        if m and m.group(1) not in seen:
            seen[m.group(1)] = _short(m.group(2))
    return list(seen.items())


def _tests_in_source(source: str) -> list[str]:
    """Test names in one file: ``name`` or ``Class::name`` (via ast; regex if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _TEST_DEF.findall(source)
    names: list[str] = []

    def visit(body, prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                names.append(prefix + node.name)
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                visit(node.body, prefix + node.name + "::")

    visit(tree.body, "")
    return names


def ids_named(test_name: str) -> list[str]:
    """Upper-case ID-like tokens of a test name after ``test``.

    >>> ids_named("test_u1_u6_resend_is_duplicate")
    ['U1', 'U6']
    >>> ids_named("TestIntake::test_A11_no_outbound")
    ['A11']
    >>> ids_named("test_utf8_ok"), ids_named("test_d3")
    ([], ['D3'])
    """
    func = test_name.rsplit("::", 1)[-1]
    tokens = func.lower().split("_")
    if not tokens or not tokens[0].startswith("test"):
        return []
    return [t.upper() for t in tokens[1:] if _ID_TOKEN.match(t)]


def scan_tests(root: Path = ROOT) -> dict[str, list[str]]:
    """``path::test`` → the ID-like tokens it names (all of them, known or not)."""
    found: dict[str, list[str]] = {}
    for d in SCAN_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if any(part in (".venv", "__pycache__") or part.endswith(".egg-info") for part in path.parts):
                continue
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for name in _tests_in_source(source):
                ids = ids_named(name)
                if ids:
                    found[f"{rel}::{name}"] = ids
    return found


def _id_key(rid: str) -> tuple[str, int]:
    m = re.match(r"([A-Z]+)(\d+)$", rid)
    return (m.group(1), int(m.group(2))) if m else (rid, 0)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(requirements: list[tuple[str, str]], tests: dict[str, list[str]]) -> str:
    known = {rid for rid, _ in requirements}
    by_id: dict[str, set[str]] = {rid: set() for rid, _ in requirements}
    unknown: dict[str, set[str]] = {}
    prefixes = {_id_key(rid)[0] for rid in known}
    for test, ids in tests.items():
        for rid in ids:
            if rid in known:
                by_id[rid].add(test)
            elif _id_key(rid)[0] in prefixes:
                unknown.setdefault(rid, set()).add(test)
    tested = sum(1 for rid in by_id if by_id[rid])
    total = len(requirements)
    citing = {t for ts in by_id.values() for t in ts}

    out = [
        "# Requirement trace",
        "",
        "<!-- Generated by `python scripts/trace.py` from docs/requirements.md and the test names."
        " Do not edit; run the script. -->",
        "",
        f"**{tested} of {total} requirements tested** ({total - tested} with no test);"
        f" {len(citing)} test functions cite at least one requirement ID.",
        "",
        "A test names a requirement by an ID token in its function name"
        " (`test_u3_...`, `test_u1_u6_...`); see [requirements.md](requirements.md).",
        "",
        "| ID | requirement | tests | status |",
        "|---|---|---|---|",
    ]
    for rid, short in requirements:
        ts = sorted(by_id[rid])
        cell = ", ".join(f"`{_cell(t)}`" for t in ts) if ts else "—"
        status = "✅ tested" if ts else "❌ no test"
        out.append(f"| {rid} | {_cell(short)} | {cell} | {status} |")
    if unknown:
        out += ["", "## IDs cited by tests but not in requirements.md", "",
                "| ID | tests |", "|---|---|"]
        for rid in sorted(unknown, key=_id_key):
            out.append(f"| {rid} | {', '.join(f'`{_cell(t)}`' for t in sorted(unknown[rid]))} |")
    return "\n".join(out) + "\n"


def build(root: Path = ROOT) -> str:
    return render(read_requirements(root / "docs" / "requirements.md"), scan_tests(root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/requirements-trace.md is missing or out of date")
    args = parser.parse_args(argv)
    text = build()
    rel = OUTPUT.relative_to(ROOT).as_posix()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
        if current != text:
            print(f"{rel} is out of date; run: python scripts/trace.py", file=sys.stderr)
            return 1
        print(f"{rel} is up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    summary = re.search(r"\*\*(.+?)\*\*", text)
    print(f"wrote {rel}: {summary.group(1) if summary else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
