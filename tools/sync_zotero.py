"""Keep the catalog's citation fields in step with a Zotero library, incrementally and safely.

Zotero is the source of the citation fields (title, authors, year, venue, arXiv id,
DOI, URL, citation key and the Zotero link); the catalog is the source of everything
else, which the sync never touches. Usage::

    python tools/sync_zotero.py --library-type group --library-id 2480461 --dry-run
    python tools/sync_zotero.py --library-type user --library-id 1234567 --add-new
    python tools/sync_zotero.py --library-type user --library-id 1234567 --local
    python tools/sync_zotero.py --from-file my-library.bib

The API key is read from ``ZOTERO_API_KEY`` only (public groups and the local API need
none). Each run reads only what changed since the library version stored in
``catalog/zotero/`` (per library, and per server); the version is saved together with
the entry files, all or nothing, after everything else succeeded.

This file is the command's documented address; the sync itself is :mod:`tools.zotero`.
It imports from the installed project (``pip install -e .``), so it runs from any folder.
"""

from tools.zotero.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
