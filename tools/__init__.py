"""The tools of the atlas, one room (subpackage) per subsystem; data flows one way.

==============  ==============================================================
``catalog``     the data model and the only code that reads or writes catalog files
``site``        the static site: page data, Jinja2 templates, plots, build and serve
``measure``     measured complexity: FLOPs, live bytes and time of every mechanism
``zotero``      citation metadata synced from a Zotero library (``sync_zotero.py``)
``notes``       literature notes: check a vault's links, export notes of the papers
``cite``        ready-to-paste citations of a paper and its implementation
==============  ==============================================================

Every room imports :mod:`tools.catalog` and nothing else of its siblings;
``tools.catalog`` imports no room and never torch; ``implementations`` knows nothing of
``tools``. ``tests/test_architecture.py`` holds the house to these rules.
"""
