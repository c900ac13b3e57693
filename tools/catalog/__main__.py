"""``python -m tools.catalog``: see :mod:`tools.catalog.cli`."""

from tools.catalog.cli import main

raise SystemExit(main())
