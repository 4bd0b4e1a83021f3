"""Every python code block of README.md and docs/*.rst runs (each page in one namespace)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def md_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def rst_blocks(text):
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if re.match(r"\s*\.\. code-block:: python\s*$", lines[i]):
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                body.append(lines[i])
                i += 1
            indent = min((len(x) - len(x.lstrip()) for x in body if x.strip()), default=0)
            blocks.append("\n".join(x[indent:] for x in body))
        else:
            i += 1
    return blocks


PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.rst"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run(page, capsys):
    text = page.read_text()
    blocks = md_blocks(text) if page.suffix == ".md" else rst_blocks(text)
    namespace = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102
