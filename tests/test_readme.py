"""The README's Python snippet runs as written (on the bundled samples)."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippet_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python block"
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    rgb, gray = scope["rgb"], scope["gray"]
    assert rgb.shape == gray.shape + (3,) and rgb.dtype == np.uint8
    assert "fusion" in capsys.readouterr().out
