"""No file of the repository points at a document the repository does not contain: every relative
link of every Markdown file resolves (to the heading, when it names one), and every `*.md` name
written in code, comments, docstrings or configuration names a file that exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Folders that are not the project's own text: tools' caches, the virtualenv, local data.
SKIP_DIRS = {".git", ".venv", ".var", ".mypy_cache", ".ruff_cache", ".pytest_cache",
             ".hypothesis", "__pycache__", "node_modules", "build", "dist"}  # fmt: skip
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".ini", ".cfg", ".mako", ".txt", ".sh"}
TEXT_NAMES = {"Makefile", ".importlinter", "run"}

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"", re.I)
_MD_NAME = re.compile(r"(?<![\w./-])((?:\.{1,2}/)*[\w.-]+(?:/[\w.-]+)*\.md)(?![\w/-])")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def project_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder, name)
            if path.suffix in TEXT_SUFFIXES or name in TEXT_NAMES:
                found.append(path)
    return sorted(found)


def slug(heading: str) -> str:
    """The anchor a heading gets on the forges that render these files (GitHub's rule)."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in _FENCE.sub("", markdown).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    result.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", markdown))
    return result


def broken_links(root: Path) -> list[str]:
    problems: list[str] = []
    for path in project_files(root):
        if path.suffix != ".md":
            continue
        text = path.read_text(encoding="utf-8")
        prose = _INLINE_CODE.sub("", _FENCE.sub("", text))
        targets = [m.group(1) for rx in (_LINK, _REFERENCE, _HTML_LINK) for m in rx.finditer(prose)]
        for target in targets:
            if _EXTERNAL.match(target) or target.startswith("//"):
                continue
            file_part, _, anchor = target.partition("#")
            destination = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(root)}: ({target})"
            if not destination.exists():
                problems.append(f"{where} names no file")
            elif not destination.resolve().is_relative_to(root.resolve()):
                problems.append(f"{where} leaves the repository")
            elif anchor and destination.suffix == ".md":
                if anchor not in anchors(destination.read_text(encoding="utf-8")):
                    problems.append(f"{where} names no heading of {destination.name}")
    return problems


def unknown_md_names(root: Path) -> list[str]:
    """`*.md` names in any text of the project that name no file of the repository: a path is
    looked up from the repository's root and from the naming file's folder, a bare name anywhere."""
    files = project_files(root)
    names = {path.name for path in files}
    problems: list[str] = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in _MD_NAME.findall(line):
                if "/" not in name:
                    found = name in names
                else:
                    candidates = [(path.parent / name).resolve(), (root / name).resolve()]
                    found = any(
                        c.is_file() and c.is_relative_to(root.resolve()) for c in candidates
                    )
                if not found:
                    problems.append(f"{path.relative_to(root)}:{number}: {name}")
    return problems


def test_every_relative_link_of_every_markdown_file_resolves() -> None:
    assert broken_links(ROOT) == []


def test_every_md_name_in_the_project_names_a_file_it_contains() -> None:
    assert unknown_md_names(ROOT) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    md = "md"  # the names below are spelt with {md} so that this file names none of them
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / f"guide.{md}").write_text(
        f"# The guide\n\n## Pricing a trip\n\nSee [it](#pricing-a-trip), [home](../README.{md}),\n"
        f"[gone](missing.{md}), [no such part](#nowhere), [web](https://example.org/x.{md}),\n"
        f"`[in code](absent.{md})` and [elsewhere](../../outside.{md}).\n\n"
        f"```\n[fenced](no.{md})\n```\n"
    )
    (tmp_path / f"README.{md}").write_text(
        f"[guide](docs/guide.{md}#the-guide) [bad](docs/guide.{md}#x)\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        f'"""As AGREEMENT.{md} says; see docs/guide.{md} and guide.{md}."""\n'
        f"# and docs/nothing.{md}\n"
    )
    assert broken_links(tmp_path) == [
        f"README.{md}: (docs/guide.{md}#x) names no heading of guide.{md}",
        f"docs/guide.{md}: (missing.{md}) names no file",
        f"docs/guide.{md}: (#nowhere) names no heading of guide.{md}",
        f"docs/guide.{md}: (../../outside.{md}) names no file",
    ]
    assert unknown_md_names(tmp_path) == [
        f"docs/guide.{md}:6: missing.{md}",
        f"docs/guide.{md}:7: absent.{md}",
        f"docs/guide.{md}:7: ../../outside.{md}",
        f"docs/guide.{md}:10: no.{md}",
        f"pkg/mod.py:1: AGREEMENT.{md}",
        f"pkg/mod.py:2: docs/nothing.{md}",
    ]
