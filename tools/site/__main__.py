"""``python -m tools.site generate | build | serve`` (see :mod:`tools.site.cli`)."""

from tools.site.cli import main

try:
    raise SystemExit(main())
except KeyboardInterrupt:  # Ctrl-C ends `serve`
    raise SystemExit(130) from None
