"""Every file the project's code and docs point to is in the repository: a reader never meets a
reference they cannot open."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
TEXT = (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".cfg", ".jinja", ".html")
PATH = re.compile(r"(?<![\w./-])((?:hiper_envs|agents|harness|leaderboards|docs|bench|tests|scripts|docker)"
                  r"/[\w./-]*\w)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
OUTSIDE = re.compile(r"\.\./shared|SPEC\.md|REFERENCE\.md|\bSPEC \d|\bREFERENCE [A-C]\b")
PLACEHOLDER = re.compile(r"[*<>{}]|DIR|iter_|/NAME|/ID\b")


def tracked() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / n for n in names.splitlines()
            if (n.endswith(TEXT) or Path(n).name in ("Makefile", "README", "run") or "Dockerfile" in n)
            and (ROOT / n).is_file()]


def dangling(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = []
    for match in PATH.finditer(text):
        ref = match.group(1).rstrip(".")
        following = text[match.end():match.end() + 2]
        if PLACEHOLDER.search(ref + following) or "__pycache__" in ref:
            continue  # a pattern (`smoke-*.yaml`, `Dockerfile.*`) or a build output, not a file
        if not (ROOT / ref).exists() and not (ROOT / ref.split("::")[0]).exists():
            found.append(ref)
    if path.suffix == ".md":
        for match in LINK.finditer(text):
            target = match.group(1)
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (path.parent / target).exists():
                found.append(target)
    return found


def test_no_reference_points_to_a_missing_file() -> None:
    missing = {str(p.relative_to(ROOT)): refs for p in tracked()
               if p.name != "test_references.py" and (refs := dangling(p))}
    assert missing == {}


def test_nothing_points_outside_the_repository() -> None:
    outside = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in tracked() if p.name != "test_references.py"
               for m in OUTSIDE.finditer(p.read_text(encoding="utf-8", errors="replace"))]
    assert outside == []


def test_the_check_finds_a_dangling_reference(tmp_path: Path) -> None:
    doc = tmp_path / "page.md"
    doc.write_text("See harness/no_such_module.py and [this](missing.md); harness/runner.py exists.")
    assert dangling(doc) == ["harness/no_such_module.py", "missing.md"]
