"""Claims that match the papers: taxonomy descriptions and official code links."""

from __future__ import annotations

import re

from tools.catalog import load_catalog

CATALOG = load_catalog()
# Repositories that hold many projects: a link must name the project's folder.
MONOREPOS = (
    "google-research/google-research",
    "google-deepmind/deepmind-research",
    "deepmind/deepmind-research",
    "facebookresearch/fairseq",
    "google-research/scenic",
)


def test_sparse_covers_sparsified_attention_weights() -> None:
    description = CATALOG.taxonomy_class("Sparse").description.lower()
    assert "attention weights" in description
    assert "mixture-of-experts" in description
    members = {e.id for e in CATALOG.entries.values() if "Sparse" in e.taxonomy}
    assert "adaptive-sparse-transformer" in members


def test_learnable_patterns_do_not_claim_the_grouping_is_always_trained() -> None:
    description = CATALOG.taxonomy_class("LP").description
    assert "trained jointly" not in description
    assert "random" in description.lower()
    assert "online k-means" in description.lower()


def test_official_code_links_name_the_mechanism_folder_of_a_monorepo() -> None:
    bare = []
    for entry in CATALOG.entries.values():
        for link in entry.official_code:
            match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)/?(.*)", link)
            assert match is not None, link
            if match.group(1) in MONOREPOS and not match.group(2):
                bare.append((entry.id, link))
    assert bare == []


def test_folder_links_are_pinned_to_a_commit() -> None:
    for entry in CATALOG.entries.values():
        for link in entry.official_code:
            match = re.search(r"/tree/([^/]+)/", link)
            if match:
                assert re.fullmatch(r"[0-9a-f]{40}", match.group(1)), (entry.id, link)
