"""The Zotero sync: keeps the catalog's citation fields in step with a Zotero library.

Zotero is the source of the citation fields (title, authors, year, venue, arXiv id,
DOI, URL, citation key and the Zotero link); the catalog is the source of everything
else, which the sync never touches. Items come from the Web API, the Zotero desktop's
local API or an export file, and every change goes through :class:`tools.catalog.Store`.
This package imports ``tools.catalog`` and no other part of ``tools``. The command is
``python tools/sync_zotero.py`` (or ``python -m tools.zotero``).

The rooms, each with one job:

==================  ==========================================================
``errors``          the one-line failures, and the redaction of the API key
``retry``           the retry policy, and which failures deserve another try
``deadline``        a deadline for each whole request and for the whole reading
``answers``         what the API documents as its answers, checked before use
``client``          :class:`ZoteroSource`: one library on one server, via pyzotero
``record``          :class:`ZoteroRecord`: an item under Zotero's field names
``importer``        CSL-JSON and Better BibTeX JSON exports as records
``bibtex``          BibTeX exports as records
``fields``          readers of single fields: authors, year, DOI, arXiv id, venue…
``mapping``         a record → the catalog's citation fields (:class:`MappedItem`)
``versions``        a preprint of a published entry: when it links, what it keeps
``matching``        which entry an item is: Zotero key, DOI, arXiv id, title
``drafts``          draft entries for items the catalog lacks (``--add-new``)
``watermark``       the library version read up to, per library and server
``options``         the command line as a typed record, its values checked
``fetch``           what changed since the watermark, or an export's items
``sync``            the plan: updates, flags, drafts, conflicts, staged in a Store
``report``          the printed changes and summary
``cli``             argument parsing and the run, failures as one line
==================  ==========================================================
"""
