"""The atlas's static site: pages generated from the catalog, built and served by MkDocs.

The data-driven pages are Markdown written by our own code into git-ignored folders of
``docs/`` before MkDocs runs, not by MkDocs plugins or hooks, so that any engine that
reads ``mkdocs.yml`` (MkDocs with Material, or Zensical) builds the same site. Every
page is a Jinja2 template in ``templates/`` fed by plain page data; text from the
catalog is escaped by default (see :mod:`tools.site.escaping`). The site reads the
catalog, the measurement files and the implementations' declarations through
:mod:`tools.catalog`; it never imports torch, the implementations or another tool.

The rooms, each with one job:

====================  ==========================================================
``cli``               ``python -m tools.site generate | build | serve``
``generate``          render every page and write what changed into ``docs/``
``build``             generate + ``mkdocs build --strict``, timed
``serve``             generate + live-reloading server, regenerating on edits
``context``           measurements, mechanisms, source links; shared helpers
``escaping``          THE Markdown/HTML escaping and the template environment
``pages``             page data, one module per page family
``usage``             the runnable usage snippet of an implementation
``plots``             SVG plots of the measured figures against n
``diagram``           the taxonomy diagram (SVG)
``blocks``            the Python code blocks of Markdown pages, for the tests
``templates/``        the Jinja2 templates of every generated page
====================  ==========================================================
"""
