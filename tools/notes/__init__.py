"""Literature notes in an Obsidian-style vault, and the links between notes and the atlas.

Command line::

    python -m tools.notes export --vault ~/Vault/Papers [--dry-run] [--adopt]
    python -m tools.notes check --vault ~/Vault [--verbose] [--no-fail] [--json] [--fix]

This room owns what the atlas does to a reader's vault: it writes one literature note
per catalog entry (only inside the note's managed block) and finds, classifies and
optionally links every reference to the atlas in the vault's notes. What it knows of
the atlas (entries, names, addresses, note file names) comes from :mod:`tools.catalog`;
it reads the implementations' declarations from their source, so it never imports torch.

============  ==========================================================
``vault``     which files of a vault are notes, read as exact text
``markdown``  code, comments, front matter and managed blocks of a note
``resolve``   what a reference points to: an entry, a class, an author, nothing
``protect``   headings, HTML, math, footnotes: what a fix leaves as written
``check``     every reference of a note, and the fixes that link them
``export``    the literature notes and their managed blocks
``cli``       ``python -m tools.notes export | check``
============  ==========================================================
"""
