"""A Zotero library holding the arXiv preprint of a paper the catalog cites as published.

The catalog here is a copy of the shipped one (Blockwise, Cluster-Former, Routing
Transformer and Performer cite their published versions: venue, DOI, ``publication``);
the group library holds their preprints, saved as Zotero's arXiv translator saves them.
A preprint whose arXiv id is the entry's, and no other item's, is linked; it fills no
field the published entry has. A hand-written ``zotero:`` link wins over every guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import copy_catalog
from tests.zotero.zotero_fake_server import FakeLibrary, FakeZotero
from tests.zotero.zotero_test_data import (
    GROUP,
    GROUP_ID,
    SENTINEL_KEY,
    SURVEY,
    authors,
    preprint,
)
from tools.catalog import load_catalog

BLOCKWISE, CLUSTER, ROUTING, PERFORMER = "BLKW1SE2", "CLSTR3F4", "RTNG5PR6", "PRFM7PR8"
PUBLISHED_BLOCKWISE = "BLKW9PUB"
ENTRIES = ("blockwise", "cluster-former", "routing-transformer", "performer")


def add_preprints(library: FakeLibrary) -> None:
    library.add(
        SURVEY,  # the item the shipped survey entry is linked to, here as its preprint
        preprint(
            "Efficient Transformers: A Survey",
            "2009.06732",
            authors("Yi Tay", "Mostafa Dehghani", "Dara Bahri", "Donald Metzler"),
            date="2020-09-14",
        ),
        parsed_date="2020-09-14",
    )
    library.add(
        BLOCKWISE,
        preprint(
            "Blockwise Self-Attention for Long Document Understanding",
            "1911.02972",
            authors("Jiezhong Qiu", "Hao Ma", "Omer Levy", "Scott Wen-tau Yih"),
            date="2019-11-07",
        ),
        parsed_date="2019-11-07",
    )
    library.add(
        CLUSTER,
        preprint(  # arXiv v1/v2 title, not the Findings title
            "Cluster-Former: Clustering-based Sparse Transformer for Long-Range Dependency "
            "Encoding",
            "2009.06097",
            authors("Shuohang Wang", "Luowei Zhou", "Zhe Gan"),
            date="2020-09-13",
        ),
        parsed_date="2020-09-13",
    )
    library.add(
        ROUTING,
        preprint(
            "Efficient Content-Based Sparse Attention with Routing Transformers",
            "2003.05997",
            authors("Aurko Roy", "Mohammad Saffar", "Ashish Vaswani", "David Grangier"),
            date="2020-03-12",
        ),
        parsed_date="2020-03-12",
    )
    library.add(
        PERFORMER,
        preprint(  # an ICLR paper: a published venue, but no DOI
            "Rethinking Attention with Performers",
            "2009.14794",
            authors("Krzysztof Choromanski", "Valerii Likhosherstov"),
            date="2020-09-30",
        ),
        parsed_date="2020-09-30",
    )


@pytest.fixture
def server() -> Iterator[FakeZotero]:
    """Overrides conftest's: a group library with the four preprints only."""
    with FakeZotero(api_keys={SENTINEL_KEY}) as fake:
        add_preprints(fake.library("group", GROUP_ID, name="Efficient Transformers"))
        yield fake


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """Overrides conftest's: a copy of the shipped catalog."""
    return copy_catalog(tmp_path / "catalog")


def entry_text(catalog_dir: Path, entry_id: str) -> str:
    return (catalog_dir / "papers" / f"{entry_id}.yaml").read_text(encoding="utf-8")


def link_lines(key: str) -> str:
    return f"zotero:\n  library: {GROUP}\n  key: {key}\n"


def test_preprints_link_to_published_entries_and_keep_their_fields(sync, catalog_dir: Path) -> None:
    before = {entry_id: entry_text(catalog_dir, entry_id) for entry_id in ENTRIES}
    survey = entry_text(catalog_dir, "efficient-transformers-survey")
    run = sync()
    assert run.code == 0, run.err
    assert run.summary == (
        "summary: updated 4, unchanged 1, new 0, unmatched 0, deleted 0, conflicts 0"
    )
    assert "conflict" not in run.out.replace("conflicts 0", "")
    entries = load_catalog(catalog_dir).entries
    for entry_id, key in zip(ENTRIES, (BLOCKWISE, CLUSTER, ROUTING, PERFORMER), strict=True):
        link = entries[entry_id].zotero
        assert link is not None and (link.library, link.key) == (GROUP, key), entry_id
        # Only the link is written: venue, DOI, publication, title, authors, year as before.
        assert entry_text(catalog_dir, entry_id) == before[entry_id] + link_lines(key)
    # What was kept is said, entry by entry.
    assert (
        "    kept (the item is its arXiv preprint): "
        'venue "Findings of EMNLP 2020", doi "10.18653/v1/2020.findings-emnlp.232"'
    ) in run.out
    cluster = [line for line in run.out.splitlines() if "kept" in line and "ACL-IJCNLP" in line]
    assert len(cluster) == 1
    assert 'title "Cluster-Former: Clustering-based Sparse Transformer for Question' in cluster[0]
    assert 'venue "TACL 2021", doi "10.1162/tacl_a_00353"' in run.out
    assert '    kept (the item is its arXiv preprint): venue "ICLR 2021"' in run.out
    assert entries["performer"].venue == "ICLR 2021"  # never "arXiv preprint"
    # The survey, already linked to its preprint, keeps its journal fields too.
    assert entry_text(catalog_dir, "efficient-transformers-survey") == survey

    again = sync("--full")
    assert again.code == 0, again.err
    assert again.summary == (
        "summary: updated 0, unchanged 5, new 0, unmatched 0, deleted 0, conflicts 0"
    )
    for entry_id, key in (("blockwise", BLOCKWISE), ("routing-transformer", ROUTING)):
        assert entry_text(catalog_dir, entry_id) == before[entry_id] + link_lines(key)


def test_an_arxiv_id_two_items_share_is_a_conflict_until_a_key_is_written(
    sync, server: FakeZotero, catalog_dir: Path
) -> None:
    """The preprint and the published version both in Zotero: nothing is guessed, and the
    ``zotero:`` key written by hand in the entry then wins, on every later run."""
    library = server.libraries[GROUP]
    library.add(
        PUBLISHED_BLOCKWISE,
        {
            "itemType": "conferencePaper",
            "title": "Blockwise Self-Attention for Long Document Understanding",
            "creators": authors("Jiezhong Qiu", "Hao Ma", "Omer Levy", "Wen-tau Yih"),
            "proceedingsTitle": "Findings of the Association for Computational Linguistics: "
            "EMNLP 2020",
            "date": "2020-11",
            "extra": "arXiv:1911.02972",
        },
        parsed_date="2020-11",
    )
    before = entry_text(catalog_dir, "blockwise")
    run = sync()
    assert run.code == 0, run.err
    assert f"conflict {GROUP}/{BLOCKWISE}" in run.out
    assert f"conflict {GROUP}/{PUBLISHED_BLOCKWISE}" in run.out
    assert "conflicts 2" in run.summary
    assert entry_text(catalog_dir, "blockwise") == before  # nothing guessed

    # The way out the README gives: write the key of the item you want in the entry.
    path = catalog_dir / "papers" / "blockwise.yaml"
    path.write_text(before + link_lines(BLOCKWISE), encoding="utf-8")
    for _ in range(2):
        run = sync("--full")
        assert run.code == 0, run.err
        assert "conflicts 0" in run.summary, run.out
        assert (
            f"other version {GROUP}/{PUBLISHED_BLOCKWISE} of blockwise: "
            f"the entry is linked to {GROUP}/{BLOCKWISE} (kept)"
        ) in run.out
        # The linked preprint fills nothing the published entry has.
        assert entry_text(catalog_dir, "blockwise") == before + link_lines(BLOCKWISE)
        assert "other versions 1" in run.summary


def test_a_preprint_found_by_title_only_is_a_conflict_that_says_how_to_resolve_it(
    sync, server: FakeZotero, catalog_dir: Path
) -> None:
    """No arXiv id to prove it: reported, with the way out; the hand-written key wins."""
    server.libraries[GROUP].edit(ROUTING, archiveID="", extra="", DOI="", url="")
    before = entry_text(catalog_dir, "routing-transformer")
    run = sync()
    assert run.code == 0, run.err
    (line,) = [line for line in run.out.splitlines() if line.startswith("conflict ")]
    assert line.startswith(f"conflict {GROUP}/{ROUTING}")
    assert "preprint" in line and "DOI 10.1162/tacl_a_00353" in line
    assert "write its key in the entry's zotero field" in line
    assert entry_text(catalog_dir, "routing-transformer") == before

    path = catalog_dir / "papers" / "routing-transformer.yaml"
    path.write_text(before + link_lines(ROUTING), encoding="utf-8")
    run = sync("--full")
    assert run.code == 0, run.err
    assert "conflicts 0" in run.summary
    entry = load_catalog(catalog_dir).entries["routing-transformer"]
    assert (entry.venue, entry.doi, entry.arxiv) == (
        "TACL 2021",
        "10.1162/tacl_a_00353",
        "2003.05997",
    )
    assert entry.publication is not None
    assert entry.publication.container_title == (
        "Transactions of the Association for Computational Linguistics"
    )
    assert entry_text(catalog_dir, "routing-transformer") == before + link_lines(ROUTING)
