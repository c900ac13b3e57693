"""``python -m tools.evaluate``: see :mod:`tools.evaluate.cli`."""

from tools.evaluate.cli import main

raise SystemExit(main())
