"""``python -m tools.zotero``: the Zotero sync, the same command as ``tools/sync_zotero.py``."""

from tools.zotero.cli import main

raise SystemExit(main())
