"""``python -m tools.notes``: see :mod:`tools.notes.cli`."""

from tools.notes.cli import main

raise SystemExit(main())
