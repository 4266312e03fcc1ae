"""The tutorials' code runs: every page of ``docs/tutorials/`` executes as written.

Per page, in a fresh interpreter and a fresh temporary working directory, in order:

- a ```` ```python ```` block is executed in the page's one namespace;
- a ```` ```bash ```` block is run command by command; it may hold only ``commpress ...`` commands
  (run as ``python -m commpress ...``) and comments;
- a ```` ```toml ```` (or any) block preceded by ``<!-- file: NAME -->`` is written to ``NAME``;
- a block preceded by ``<!-- no-test -->`` is skipped (multi-process DDP, hosts, root).

Other blocks (``text``: printed output) are not run. A failure names the page and the line of the
Markdown file. ``python tests/test_tutorials.py PAGE.md`` runs one page here, in the current folder.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
#: A fenced block: its opening fence, language and first line; the marker comment before it, if any.
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<lang>[^\s`]*)[^\n]*$")
_MARKER = re.compile(r"^<!--\s*(?P<what>no-test|file:\s*(?P<name>[^\s>]+))\s*-->\s*$")


@dataclass
class Block:
    lang: str
    line: int  # line of the first line of code, 1-based
    code: str
    skip: bool
    file: str | None


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page, with their markers."""
    out: list[Block] = []
    lines = text.splitlines()
    marker: re.Match | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            close = fence.group("fence")
            body_start = i + 1
            j = body_start
            while j < len(lines) and not lines[j].startswith(close):
                j += 1
            if j == len(lines):
                raise ValueError(f"line {i + 1}: code block never closed")
            out.append(Block(
                lang=fence.group("lang").lower(),
                line=body_start + 1,
                code="\n".join(lines[body_start:j]) + "\n",
                skip=bool(marker and marker.group("what") == "no-test"),
                file=marker.group("name") if marker and marker.group("name") else None,
            ))
            marker = None
            i = j + 1
            continue
        if line.strip():
            marker = _MARKER.match(line.strip())
        i += 1
    return out


def run_page(path: Path) -> int:
    """Run a page's blocks here (the current folder); returns the number of blocks run."""
    namespace: dict = {"__name__": "__tutorial__"}
    # as in an interactive `python` started in this folder: modules the page saves are importable
    sys.path.insert(0, os.getcwd())
    ran = 0
    for block in blocks(path.read_text(encoding="utf-8")):
        if block.skip:
            continue
        start = time.perf_counter()
        if block.file:
            Path(block.file).write_text(block.code, encoding="utf-8")
        elif block.lang == "python":
            # blank lines first, so that a traceback's line numbers are the Markdown file's
            code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
            exec(code, namespace)  # noqa: S102
        elif block.lang in ("bash", "sh", "shell", "console"):
            for offset, command in enumerate(block.code.splitlines()):
                command = command.split("#", 1)[0].strip()
                if not command:
                    continue
                argv = shlex.split(command)
                if argv[0] != "commpress":
                    raise AssertionError(
                        f"{path.name}:{block.line + offset}: only `commpress` commands run in a tested bash "
                        f"block; got {command!r}. Mark the block with <!-- no-test --> if it must not run."
                    )
                done = subprocess.run([sys.executable, "-m", "commpress", *argv[1:]], timeout=300)
                if done.returncode:
                    raise AssertionError(f"{path.name}:{block.line + offset}: {command!r} exited {done.returncode}")
        else:
            continue
        ran += 1
        print(f"{path.name}:{block.line}: {block.lang or 'file'} block ok ({time.perf_counter() - start:.1f} s)",
              flush=True)
    return ran


# ------------------------------------------------------------------------------------------ tests
def _pages() -> list[Path]:
    return sorted(TUTORIALS.glob("*.md"))


def test_there_are_tutorials():
    names = {p.stem for p in _pages()}
    assert {"first-simulation", "own-compressor", "sweep", "processes", "ddp", "reproduce", "downlink"} <= names


def test_markers_parse():
    text = "\n".join([
        "```python", "a = 1", "```",
        "<!-- no-test -->", "", "```bash", "sudo rm -rf /", "```",
        "<!-- file: x.toml -->", "```toml", "k = 1", "```",
        "```text", "output", "```",
    ])
    found = blocks(text)
    assert [(b.lang, b.skip, b.file, b.line) for b in found] == [
        ("python", False, None, 2), ("bash", True, None, 7), ("toml", False, "x.toml", 11), ("text", False, None, 14),
    ]


def _params():
    import pytest

    return [pytest.param(p, id=p.stem) for p in _pages()]


def pytest_generate_tests(metafunc):
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", _params())


def test_tutorial_runs(page: Path, tmp_path: Path):
    # examples/plugin on the path: as after `pip install -e examples/plugin`, which the pages show
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / "examples" / "plugin"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(page)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, f"{page.name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    if any(not b.skip and (b.lang == "python" or b.file or b.lang == "bash") for b in blocks(page.read_text())):
        assert "block ok" in done.stdout


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        count = run_page(Path(arg).resolve())
        print(f"{Path(arg).name}: {count} blocks ran")
