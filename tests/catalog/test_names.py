"""One way to fold and compare names: "Łukasz" and "Lukasz" are one name everywhere."""

from __future__ import annotations

from tools.catalog import load_catalog
from tools.catalog.names import NameIndex, closest_hint, fold, name_key, slug


def test_every_spelling_of_a_polish_name_folds_alike() -> None:
    assert fold("Łukasz Kaiser") == fold("Lukasz Kaiser") == "Lukasz Kaiser"
    assert name_key("Łukasz Kaiser") == name_key("lukasz-kaiser")
    assert slug("Łukasz Kaiser") == slug("Lukasz Kaiser") == "lukasz-kaiser"


def test_accented_model_names_find_their_entry_either_way() -> None:
    index = NameIndex.build(load_catalog())
    assert index.lookup("Nyströmformer") == index.lookup("Nystromformer") == ["nystromformer"]
    pattern = index.mention_pattern()
    assert pattern.search("we tried Nystromformers")
    assert pattern.search("we tried Nyströmformer")


def test_closest_hint_names_near_misses_only() -> None:
    assert closest_hint("perfomer", ["performer", "dense"]) == "; closest: performer"
    assert closest_hint("zzzz", ["performer", "dense"]) == ""
