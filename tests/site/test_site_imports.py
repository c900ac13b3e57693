"""The site generator reads data: generating the pages never imports torch or the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
from pathlib import Path
from tools.site.generate import generate
_, changes = generate(None, Path(sys.argv[1]), dry_run=True, quiet=True)
assert changes is not None and changes.written
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "implementations"))
assert not loaded, loaded
"""


def test_generate_imports_neither_torch_nor_implementations(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
