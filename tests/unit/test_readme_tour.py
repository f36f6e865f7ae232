"""The README's tour runs as printed (its GPU line only where CuPy and a GPU are present): the public API it shows
cannot change without this test failing."""

import re
from pathlib import Path

from crossbar.backend import cupy_available

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_tour_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README.md has no python block"
    for block in blocks:
        lines = [line for line in block.splitlines() if cupy_available() or '"cupy"' not in line]
        exec(compile("\n".join(lines), str(README), "exec"), {})
