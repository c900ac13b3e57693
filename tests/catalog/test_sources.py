"""Official code links are pinned and name the mechanism's folder or file (issue 12, point 13)."""

from __future__ import annotations

import re

from tools.catalog import load_catalog

CATALOG = load_catalog()

GITHUB = re.compile(r"https://github\.com/(?P<repo>[^/]+/[^/]+?)(?:/(?P<rest>.*))?")
PINNED = re.compile(r"(?:tree|blob)/[0-9a-f]{40}(?:/.+)?")
# Repositories that hold many models: a link must go below the root.
MONOREPOS = {
    "google-research/google-research",
    "google-deepmind/deepmind-research",
    "deepmind/deepmind-research",
    "facebookresearch/fairseq",
    "google-research/scenic",
    "tensorflow/tensor2tensor",
    "tensorflow/mesh",
    "tensorflow/lingvo",
    "facebookresearch/XLM",
    "google/trax",
    "google-research/t5x",
}
# Where the mechanism lives inside a monorepo.
EXPECTED_PATHS = {
    "reformer": ["trax/models/reformer"],
    "product-key-memory": ["xlm/model/memory"],
    "image-transformer": ["tensor2tensor/models/image_transformer.py"],
    "gshard": ["lingvo/core/gshard_layers.py"],
    "switch-transformer": ["mesh_tensorflow/transformer/moe.py", "t5x/contrib/moe"],
    "st-moe": ["mesh_tensorflow/transformer/moe.py"],
    "synthesizer": ["mesh_tensorflow/transformer/attention.py"],
}


def _links():
    for entry in CATALOG.entries.values():
        for link in entry.official_code:
            yield entry.id, link


def test_every_github_link_is_pinned_to_a_commit() -> None:
    unpinned = []
    for entry_id, link in _links():
        match = GITHUB.fullmatch(link)
        if match is None:
            continue
        if not PINNED.fullmatch(match.group("rest") or ""):
            unpinned.append((entry_id, link))
    assert unpinned == []


def test_no_link_is_the_root_of_a_monorepo() -> None:
    roots = []
    for entry_id, link in _links():
        match = GITHUB.fullmatch(link)
        assert match is not None, (entry_id, link)
        if match.group("repo") in MONOREPOS:
            path = re.sub(r"^(?:tree|blob)/[^/]+/?", "", match.group("rest") or "")
            if not path:
                roots.append((entry_id, link))
    assert roots == []


def test_monorepo_links_name_the_mechanism() -> None:
    for entry_id, paths in EXPECTED_PATHS.items():
        links = CATALOG.entries[entry_id].official_code
        for path in paths:
            assert any(link.endswith("/" + path) for link in links), (entry_id, path)


def test_checked_overstatements_do_not_return() -> None:
    notes = {e.id: e.notes or "" for e in CATALOG.entries.values()}
    assert "Jiancheng Lv last" not in notes["poolingformer"]
    assert "six authors" not in notes["etc"]
    assert "Later arXiv versions" not in notes["tokenlearner"]
    assert "EMNLP" not in notes["longformer"]
