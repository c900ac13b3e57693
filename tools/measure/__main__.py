"""``python -m tools.measure``: see :mod:`tools.measure.cli`."""

from tools.measure.cli import main

raise SystemExit(main())
