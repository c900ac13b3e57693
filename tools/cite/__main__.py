"""``python -m tools.cite``: see :mod:`tools.cite.cli`."""

from tools.cite.cli import main

raise SystemExit(main())
