"""Synthetic Zotero data and a small catalog for the sync's tests.

Group 2480461 is the group the survey note links to (its item HF7B8SJU is the survey).
The items cover what the sync must handle: preprints whose arXiv id sits in
``archiveID``, ``extra``, an arXiv DOI or the URL; a ``Citation Key:`` line and the
native ``citationKey``; a preprint and its published version kept side by side; an item
that only matches by title; an editor who is no author; notes, attachments and
annotations; a trashed item. The catalog has comments, flow-style lists and hand-written
fields that the sync must leave alone, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.zotero.zotero_fake_server import FakeLibrary, FakeZotero

ROOT = Path(__file__).resolve().parents[2]  # the repository

# A key no real account has; the tests check it never leaves the process's environment.
SENTINEL_KEY = "SENTINEL-zotero-key-7f3a9c1e"

GROUP_ID = 2480461
GROUP = f"groups/{GROUP_ID}"
FIXTURE_USER_ID = 475425
FIXTURES = Path(__file__).parent / "fixtures"

SURVEY = "HF7B8SJU"
LINFORMER = "LNF2RMR4"
PERFORMER = "PRF9RMR5"
LONGFORMER = "LNG4FRM6"
BIG_BIRD = "BGB7RD22"
REFORMER_PREPRINT = "RFM3PRE4"
REFORMER_PUBLISHED = "RFM3PUB5"
SYNTHESIZER = "SYN7HES8"
ROUTING_TRASHED = "RTG5TRS9"
SPARSE = "SPR5TRN7"
TRANSFORMER_XL_PREPRINT = "TXL2PRE3"
VASWANI = "VSW2017A"
STANDALONE_NOTE = "NOTE2345"
STANDALONE_ATTACHMENT = "ATT3WEB4"
CHILD_NOTE = "CHN2NOTE"
CHILD_ATTACHMENT = "ATT2PDF3"
ANNOTATION = "ANN2TAT4"


def authors(*names: str) -> list[dict[str, str]]:
    """Two-field author creators from "Given Family" strings."""
    creators = []
    for name in names:
        given, _, family = name.rpartition(" ")
        creators.append({"creatorType": "author", "firstName": given, "lastName": family})
    return creators


def preprint(title: str, arxiv: str, creators: list[dict[str, str]], **fields: Any) -> dict:
    """A preprint as Zotero's arXiv translator saves it; ``fields`` override or remove (None)."""
    data = {
        "itemType": "preprint",
        "title": title,
        "creators": creators,
        "abstractNote": "",
        "genre": "",
        "repository": "arXiv",
        "archiveID": f"arXiv:{arxiv}",
        "place": "",
        "date": "",
        "DOI": f"10.48550/arXiv.{arxiv}",
        "citationKey": "",
        "url": f"http://arxiv.org/abs/{arxiv}",
        "extra": f"arXiv:{arxiv} [cs]",
        "libraryCatalog": "arXiv.org",
        "collections": [],
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def populate_group(library: FakeLibrary) -> None:
    """The group library of the tests (see the module docstring)."""
    library.add(
        SURVEY,
        {
            "itemType": "journalArticle",
            "title": "Efficient Transformers: A Survey",
            "creators": authors("Yi Tay", "Mostafa Dehghani", "Dara Bahri", "Donald Metzler"),
            "publicationTitle": "ACM Computing Surveys",
            "date": "2022-12-07",
            "DOI": "10.1145/3530811",
            "url": "https://doi.org/10.1145/3530811",
            "extra": "arXiv:2009.06732",
            "collections": ["SURV2345"],
        },
        parsed_date="2022-12-07",
    )
    library.add(
        LINFORMER,
        preprint(
            "Linformer: Self-Attention with Linear Complexity",
            "2006.04768",
            authors("Sinong Wang", "Belinda Z. Li", "Madian Khabsa", "Han Fang", "Hao Ma"),
            date="2020-06-14",
            extra="arXiv:2006.04768 [cs, stat]",
        ),
        parsed_date="2020-06-14",
    )
    library.add(
        PERFORMER,
        {  # the arXiv id only in Extra, with a pinned Better BibTeX key
            "itemType": "conferencePaper",
            "title": "Rethinking Attention with Performers",
            "creators": authors("Krzysztof Choromanski", "Valerii Likhosherstov"),
            "proceedingsTitle": "",
            "conferenceName": "ICLR 2021",
            "date": "2021",
            "DOI": "",
            "url": "",
            "extra": "arXiv:2009.14794 [cs, stat]\nCitation Key: choromanski2021rethinking",
        },
        parsed_date="2021",
    )
    library.add(
        LONGFORMER,
        preprint(  # the arXiv id only in the DOI; Zotero 8's native citation key
            "Longformer: The Long-Document Transformer",
            "2004.05150",
            authors("Iz Beltagy", "Matthew E. Peters", "Arman Cohan"),
            archiveID="",
            url="",
            extra="",
            citationKey="beltagy2020longformer",
            date="2020",
        ),
        parsed_date="2020",
    )
    library.add(
        BIG_BIRD,
        {  # the arXiv id only in a versioned URL; an editor who must not become an author
            "itemType": "conferencePaper",
            "title": "Big Bird: Transformers for Longer Sequences",
            "creators": [
                *authors("Manzil Zaheer", "Guru Guruganesh"),
                {"creatorType": "editor", "firstName": "H.", "lastName": "Larochelle"},
                {"creatorType": "author", "name": "Google Research"},
            ],
            "proceedingsTitle": "Advances in Neural Information Processing Systems 33",
            "conferenceName": "NeurIPS 2020",
            "date": "2020",
            "url": "https://arxiv.org/abs/2007.14062v2",
            "extra": "",
        },
        parsed_date="2020",
    )
    library.add(
        REFORMER_PREPRINT,
        preprint(
            "Reformer: The Efficient Transformer",
            "2001.04451",
            authors("Nikita Kitaev", "Łukasz Kaiser", "Anselm Levskaya"),
            date="2020-01-13",
        ),
        parsed_date="2020-01-13",
    )
    library.add(
        REFORMER_PUBLISHED,
        {
            "itemType": "conferencePaper",
            "title": "Reformer: The Efficient Transformer",
            "creators": authors("Nikita Kitaev", "Łukasz Kaiser", "Anselm Levskaya"),
            "proceedingsTitle": "International Conference on Learning Representations",
            "date": "2020",
            "url": "https://openreview.net/forum?id=rkgNKkHtvB",
        },
        parsed_date="2020",
    )
    library.add(
        SYNTHESIZER,
        {  # no DOI, no arXiv id: found by its title alone
            "itemType": "conferencePaper",
            "title": "Synthesizer: rethinking self-attention for transformer models",
            "creators": authors("Yi Tay", "Dara Bahri", "Donald Metzler"),
            "proceedingsTitle": "ICML 2021",
            "date": "2021",
            "url": "",
        },
        parsed_date="2021",
    )
    library.add(
        ROUTING_TRASHED,
        preprint(
            "Efficient Content-Based Sparse Attention with Routing Transformers",
            "2003.05997",
            authors("Aurko Roy"),
            deleted=1,
        ),
    )
    library.add(
        SPARSE,
        preprint(
            "Generating Long Sequences with Sparse Transformers",
            "1904.10509",
            authors("Rewon Child", "Scott Gray", "Alec Radford", "Ilya Sutskever"),
            date="2019",
        ),
        parsed_date="2019",
    )
    library.add(
        TRANSFORMER_XL_PREPRINT,
        preprint(
            "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context",
            "1901.02860",
            authors("Zihang Dai", "Zhilin Yang"),
            date="2019",
        ),
        parsed_date="2019",
    )
    library.add(
        VASWANI,
        preprint(
            "Attention Is All You Need",
            "1706.03762",
            authors("Ashish Vaswani", "Noam Shazeer", "Niki Parmar"),
            date="2017-06-12",
        ),
        parsed_date="2017-06-12",
    )
    note_html = '<div data-schema-version="9"><p>Read with the survey.</p></div>'
    library.add(STANDALONE_NOTE, {"itemType": "note", "note": note_html})
    library.add(
        STANDALONE_ATTACHMENT,
        {"itemType": "attachment", "linkMode": "linked_url", "title": "A web page", "url": ""},
    )
    library.add(CHILD_NOTE, {"itemType": "note", "note": note_html, "parentItem": LINFORMER})
    library.add(
        CHILD_ATTACHMENT,
        {
            "itemType": "attachment",
            "parentItem": LINFORMER,
            "linkMode": "imported_url",
            "title": "Preprint PDF",
            "contentType": "application/pdf",
        },
    )
    library.add(
        ANNOTATION,
        {
            "itemType": "annotation",
            "parentItem": CHILD_ATTACHMENT,
            "annotationType": "highlight",
            "annotationText": "low-rank",
        },
    )


def populate_fixture_user(library: FakeLibrary) -> None:
    """User 475425 from the shared fixtures (real API responses)."""
    for item in json.loads((FIXTURES / "items_doc.json").read_text(encoding="utf-8")):
        library.add_raw(item)
    library.add_raw(json.loads((FIXTURES / "attachments_doc.json").read_text(encoding="utf-8")))


def populate_large(library: FakeLibrary, count: int = 1000) -> None:
    for number in range(count):
        arxiv = f"2101.{number:05d}"
        library.add(
            f"L{number:07d}",
            preprint(f"Paper number {number}", arxiv, authors("Ada Lovelace"), date="2021"),
            parsed_date="2021",
        )


def make_server(api_key: str) -> FakeZotero:
    server = FakeZotero(api_keys={api_key})
    populate_group(server.library("group", GROUP_ID, name="Efficient Transformers"))
    populate_fixture_user(server.library("user", FIXTURE_USER_ID, private=False))
    server.local_user = f"users/{FIXTURE_USER_ID}"
    return server


# ----------------------------------------------------------------------------- the catalog

SCHEMA_LINE = "# yaml-language-server: $schema=../schema/entry.schema.json\n"

TAXONOMY = """\
classes:
  - code: FP
    name: Fixed Patterns
    description: A fixed sparsity pattern.
  - code: LP
    name: Learnable Patterns
    description: A learned sparsity pattern.
  - code: LR
    name: Low-Rank
    description: Low-rank projections.
  - code: KR
    name: Kernels
    description: Kernel feature maps.
  - code: RC
    name: Recurrence
    description: Segment recurrence.
  - code: M
    name: Neural Memory
    description: Global memory tokens.
"""

HAND_FIELDS = """\
complexity:
  time: O(n)
  memory: O(n)
decode: false
summary: >-
  Our own words, written by a person: never touched by the sync.
"""

ENTRIES: dict[str, str] = {
    "efficient-transformers-survey": """\
# The survey this atlas follows.
id: efficient-transformers-survey
name: Efficient Transformers Survey
kind: survey
title: 'Efficient Transformers: A Survey'
authors:
  - Yi Tay
  - Mostafa Dehghani
  - Dara Bahri
  - Donald Metzler
year: 2022
venue: ACM Computing Surveys
arxiv: '2009.06732'
doi: 10.1145/3530811
url: https://doi.org/10.1145/3530811
citekey: tay2022efficient
summary: >-
  A survey of efficient Transformers.
""",
    "linformer": """\
id: linformer
name: Linformer
kind: model
# Title as first typed; Zotero has the right capitalisation.
title: 'Linformer: Self-attention with linear complexity'
authors:
  - Sinong Wang
  - Belinda Z. Li
  - Madian Khabsa
  - Han Fang
  - Hao Ma
year: 2020
venue: arXiv preprint   # never published elsewhere
arxiv: '2006.04768'
url: http://arxiv.org/abs/2006.04768
citekey: wang2020linformer
taxonomy: [LR]   # flow style, kept as written
complexity:
  time: O(n k)
  memory: O(n k)
  symbols:
    k: projected length   # "k" in the paper
decode: false

summary: >-
  Projects keys and values to a fixed length k, so attention costs O(n k).
notes: |
  Hand-written notes.
    Indented line, kept.
related: [performer]
""",
    "performer": """\
id: performer
name: Performer
kind: model
title: Rethinking Attention with Performers
authors:
  - Krzysztof Choromanski
  - Valerii Likhosherstov
year: 2021
venue: ICLR 2021
arxiv: '2009.14794'
url: https://arxiv.org/abs/2009.14794
citekey: choromanski2021rethinking
taxonomy:
  - KR
"""
    + HAND_FIELDS,
    "longformer": """\
id: longformer
name: Longformer
kind: model
title: 'Longformer: The Long-Document Transformer'
authors:
  - Iz Beltagy
  - Matthew E. Peters
  - Arman Cohan
year: 2020
venue: arXiv preprint
arxiv: '2004.05150'
url: https://arxiv.org/abs/2004.05150
citekey: beltagy2020long
taxonomy:
  - FP
"""
    + HAND_FIELDS,
    "big-bird": """\
id: big-bird
name: BigBird
kind: model
title: 'Big Bird: Transformers for Longer Sequences'
authors:
  - Manzil Zaheer
  - Guru Guruganesh
year: 2020
venue: NeurIPS 2020
arxiv: '2007.14062'
url: https://arxiv.org/abs/2007.14062
citekey: zaheer2020big
taxonomy:
  - FP
  - M
"""
    + HAND_FIELDS,
    "reformer": """\
id: reformer
name: Reformer
kind: model
title: 'Reformer: The Efficient Transformer'
authors:
  - Nikita Kitaev
  - Łukasz Kaiser
  - Anselm Levskaya
year: 2020
venue: ICLR 2020
arxiv: '2001.04451'
url: https://arxiv.org/abs/2001.04451
citekey: kitaev2020reformer
taxonomy:
  - LP
"""
    + HAND_FIELDS,
    "synthesizer": """\
id: synthesizer
name: Synthesizer
kind: model
title: 'Synthesizer: Rethinking Self-Attention for Transformer Models'
authors:
  - Yi Tay
  - Dara Bahri
  - Donald Metzler
year: 2021
venue: ICML 2021
url: https://proceedings.mlr.press/v139/tay21a.html
citekey: tay2021synthesizer
taxonomy:
  - LP
"""
    + HAND_FIELDS,
    "routing-transformer": """\
id: routing-transformer
name: Routing Transformer
kind: model
title: Efficient Content-Based Sparse Attention with Routing Transformers
authors:
  - Aurko Roy
year: 2020
venue: TACL 2021
arxiv: '2003.05997'
url: https://arxiv.org/abs/2003.05997
citekey: roy2021efficient
taxonomy:
  - LP
"""
    + HAND_FIELDS,
    "sparse-transformer": """\
id: sparse-transformer
name: Sparse Transformer
kind: model
title: Generating Long Sequences with Sparse Transformers
authors:
  - Rewon Child
  - Scott Gray
  - Alec Radford
  - Ilya Sutskever
year: 2019
venue: arXiv preprint
arxiv: '1904.10509'
url: http://arxiv.org/abs/1904.10509
citekey: child2019generating
taxonomy:
  - FP
"""
    + HAND_FIELDS
    + f"""\
zotero:
  library: {GROUP}
  key: {SPARSE}
""",
    "transformer-xl": """\
id: transformer-xl
name: Transformer-XL
kind: model
title: 'Transformer-XL: Attentive Language Models beyond a Fixed-Length Context'
authors:
  - Zihang Dai
  - Zhilin Yang
year: 2019
venue: ACL 2019
arxiv: '1901.02860'
doi: 10.18653/v1/P19-1285
url: https://aclanthology.org/P19-1285
citekey: dai2019transformer
taxonomy:
  - RC
"""
    + HAND_FIELDS,
}


def write_catalog(root: Path) -> Path:
    """A fresh catalog folder under ``root`` (the tests' own copy; never the shipped one)."""
    papers = root / "papers"
    papers.mkdir(parents=True)
    (root / "taxonomy.yaml").write_text(TAXONOMY, encoding="utf-8")
    for entry_id, text in ENTRIES.items():
        (papers / f"{entry_id}.yaml").write_text(SCHEMA_LINE + text, encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, byte for byte (the empty lock file a writer holds aside)."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".atlas.lock"
    }
