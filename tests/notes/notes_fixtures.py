"""Shared data of the notes tests: the example note's place and a reader's note.

A module of its own (not conftest.py): test modules import it as
``tests.notes.notes_fixtures``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.catalog import ROOT

EXAMPLE_NOTES = ROOT.parent / "shared" / "examples" / "notes"
EXAMPLE_NOTE = EXAMPLE_NOTES / "2020 Efficient Transformers - A Survey.md"
SURVEY_ZOTERO = {"library": "groups/2480461", "key": "HF7B8SJU"}
# A made-up item of the same library, marked deleted in Zotero.
DELETED_ZOTERO = {"library": "groups/2480461", "key": "DELE7ED1", "deleted": True}

# A note of the reader's: every form of reference, broken ones, code that must stay.
READING_NOTE_NAME = "Reading – Nyström & friends (2021).md"
READING_NOTE = """\
---
tags: [reading]
related: "[[Performer]]"
---
# Reading list – Nyström & friends

- [[Big Bird]] and [[BigBird|the BigBird paper]] are one model.
- [[Nyströmformer#Method]] and [[nystromformer]].
- Kernels: [@choromanski2021rethinking, p. 3] and @katharopoulos2020transformers say so.
- Typo [[Perfomer]]; unknown [@smith2099nothing]; mail someone@example.org; @handle.
- Code: impl:performer and impl:no-such-model.
- Zotero: zotero://select/groups/2480461/items/HF7B8SJU and
  zotero://select/groups/2480461/items/ZZZZ9999 and
  [deleted](zotero://select/groups/2480461/items/DELE7ED1).
- Topic [[nlp_survey]], author [[Yi Tay]], class [[Kernels]], figure ![[fig.png]].
- Already linked: [Linformer](https://arxiv.org/abs/2006.04768), see Linformer.

```python
# [[Performer]] @choromanski2021rethinking impl:performer Reformer
```

Inline `[[Reformer]] impl:reformer` stays; Reformer and Set Transformers do not.
"""


def require_example_note() -> Path:
    """The example note, or skip: it lives in ``shared/`` beside the repository."""
    if not EXAMPLE_NOTE.exists():
        pytest.skip(f"example note not found at {EXAMPLE_NOTE} (the shared/ folder is absent)")
    return EXAMPLE_NOTE


# Citations and exported notes pin the current commit: they need a git checkout.
requires_checkout = pytest.mark.skipif(
    not (ROOT / ".git").exists(), reason="not a git checkout: there is no commit to pin"
)
