"""Ready-to-paste citations of a paper of the atlas and of its reference implementation.

Command line::

    python -m tools.cite performer                       # Markdown (the default)
    python -m tools.cite performer --format obsidian     # a callout for an Obsidian note
    python -m tools.cite performer --format bibtex       # @inproceedings + @software
    python -m tools.cite impl:performer --format csljson

The paper is cited with its catalog citekey; the implementation as software of the
atlas (``@software{impl:<id>, ...}``) with the version, the commit, the source URL pinned
to that commit with the line range of the main class, and the entry's site page.
``impl:<id>`` is the stable short form to write in notes (see
:mod:`tools.catalog.addresses`). Unknown ids exit with status 2 and the closest matches.

This room owns the citation of one entry; everything it cites (the entry, its
addresses, the BibTeX and CSL-JSON of the paper, the note's file name) comes from
:mod:`tools.catalog`. It reads the implementations' declarations from their source,
so it never imports torch.

==========  ==========================================================
``build``   which entry a reference names; what its citation holds
``render``  the citation as Markdown, an Obsidian callout, BibTeX, CSL-JSON
``cli``     ``python -m tools.cite``
==========  ==========================================================
"""
