"""The repository is self-contained: no tracked text file cites a file that does not ship with it.

A user who installs the package or clones the repository has README.md and the code, nothing else. Two checks:

(a) No tracked text file (suffixes below, and README files) mentions one of the project's former reference notes
    by file name (``physics.md``, ``DESIGN.md``, ``style_anchors.md``, ``landscape.md``, ``gpu_facts.md``,
    ``rng.md``) or a path into a sibling ``../shared`` folder. This file itself is exempt (it names them).
(b) Every repository-relative file path that README.md or benchmarks/RESULTS.md cites exists in the repository
    (tracked, or a new file git does not ignore). Only tokens inside backticks or markdown link targets are
    considered, and only those that contain a ``/`` and end in a file suffix; tokens with glob or placeholder
    characters, URLs, absolute paths and shell variables are skipped. README.md paths resolve against the
    repository root; RESULTS.md paths against the root or against benchmarks/.

Both are skipped when git is not installed or the tests do not run inside a git checkout (an installed package).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()
SUFFIXES = {".py", ".md", ".cu", ".cuh", ".toml", ".txt", ".cfg", ".sh"}

#: the reference notes that never ship, as file names, and the sibling folder they lived in
FOREIGN = re.compile(r"(?<![\w.-])(?:physics|DESIGN|style_anchors|landscape|gpu_facts|rng)\.md\b|\.\./shared\b",
                     re.IGNORECASE)
#: documents whose cited paths must exist, each with the folders (relative to the root) a path may resolve from
PATH_DOCS = {"README.md": ("",), "benchmarks/RESULTS.md": ("", "benchmarks")}

_BACKTICKS = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PATHLIKE = re.compile(r"^[\w.\-/]*/[\w.\-/]*\.[A-Za-z][A-Za-z0-9]*$")
_SKIP_CHARS = set("*?[]{}<>$~")


def _git(*args) -> list[str]:
    """Lines of ``git args`` run at the repository root; skips the test without git or outside a checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"not a git checkout: {proc.stderr.strip()[:200]}")
    return [line for line in proc.stdout.splitlines() if line]


def _tracked() -> list[str]:
    files = _git("ls-files")
    if not files:
        pytest.skip("git lists no tracked files here")
    return files


def _is_text_file(name: str) -> bool:
    path = PurePosixPath(name)
    return path.suffix in SUFFIXES or path.name.startswith("README")


def foreign_citations(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of every line of ``text`` that cites a reference note or ``../shared``."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if FOREIGN.search(line)]


def cited_paths(text: str) -> list[tuple[int, str]]:
    """``(line number, path)`` of the repository-relative file paths cited in backticks or link targets."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        tokens = [w for m in _BACKTICKS.finditer(line) for w in m.group(1).split()]
        tokens += [m.group(1) for m in _LINK.finditer(line)]
        for token in tokens:
            token = token.split("=")[-1].split("#")[0].strip("'\"(),;:")
            if not token or "://" in token or token.startswith("/") or _SKIP_CHARS & set(token):
                continue
            if _PATHLIKE.match(token):
                out.append((n, token))
    return out


def missing_paths(text: str, bases, exists) -> list[tuple[int, str]]:
    """The cited paths of ``text`` that ``exists(relative path)`` finds under none of ``bases``."""
    missing = []
    for n, token in cited_paths(text):
        candidates = [_normalise(PurePosixPath(base, token)) for base in bases]
        if not any(c is not None and exists(c) for c in candidates):
            missing.append((n, token))
    return missing


def _normalise(path: PurePosixPath) -> str | None:
    """``path`` with ``.`` and ``..`` resolved, or None if it leaves the repository."""
    parts = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def test_no_tracked_file_cites_a_reference_note_outside_the_repository():
    bad = []
    for name in _tracked():
        path = ROOT / name
        if not _is_text_file(name) or path.resolve() == THIS or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        bad += [f"{name}:{n}: {line}" for n, line in foreign_citations(text)]
    assert not bad, "citations of files that do not ship with the repository:\n" + "\n".join(bad)


def test_paths_cited_by_readme_and_results_exist():
    shipped = set(_tracked()) | set(_git("ls-files", "--others", "--exclude-standard"))
    folders = {str(p) for name in shipped for p in PurePosixPath(name).parents}
    exists = lambda rel: rel in shipped or rel in folders  # noqa: E731
    bad = []
    for doc, bases in PATH_DOCS.items():
        path = ROOT / doc
        if not path.is_file():
            continue
        bad += [f"{doc}:{n}: {token}" for n, token in missing_paths(path.read_text(encoding="utf-8"), bases, exists)]
    assert not bad, "paths cited that do not exist in the repository:\n" + "\n".join(bad)


# ---- the detectors themselves catch what they are meant to catch ------------------------------------------------
@pytest.mark.parametrize("line", [
    "see physics.md 2.1", "(spec/physics.md sections 1.1 and 3.1)", "as DESIGN.md decision 7 asks",
    "From the project root this folder is `../shared/data/mnist`", "spec/rng.md says why", "gpu_facts.md",
    "style_anchors.md", "the landscape.md table", "design.md",
])
def test_foreign_citation_detector_catches(line):
    assert foreign_citations(line) == [(1, line)]


@pytest.mark.parametrize("line", [
    "crossbar.physics.rng draws", "a physics module", "the README.md section", "my_rng.md", "shared memory",
])
def test_foreign_citation_detector_ignores(line):
    assert foreign_citations(line) == []


def test_cited_path_detector():
    text = ("run `python -m pytest tests/unit/test_nothing.py` and see [raw](results/gone.json#top)\n"
            "`crossbar/physics/pulses.py`, `tests/physics/test_pin_*.py`, `tests/physics/test_mutants_<module>.py`,\n"
            "`OUT=benchmarks/results/x.json`, `https://example.org/a.py`, `/tmp/a.json`, `$OUT/a.json`,\n"
            "`benchmarks/results/readme_main_command_2026-12-04/`, `crossbar.physics.devices`, `1/126`\n")
    assert cited_paths(text) == [(1, "tests/unit/test_nothing.py"), (1, "results/gone.json"),
                                 (2, "crossbar/physics/pulses.py"), (3, "benchmarks/results/x.json")]
    present = {"crossbar/physics/pulses.py", "benchmarks/results/gone.json"}
    assert missing_paths(text, ("", "benchmarks"), present.__contains__) == [
        (1, "tests/unit/test_nothing.py"), (3, "benchmarks/results/x.json")]
    assert missing_paths("`../x/a.md`", ("",), lambda rel: True) == [(1, "../x/a.md")]  # leaves the repository
    assert missing_paths("`../crossbar/physics/io.py`", ("benchmarks",), {"crossbar/physics/io.py"}.__contains__) == []
