"""What the Zotero API documents as its answers, checked before anything is read from them.

A 200 answer that is not JSON, or JSON of another shape (an item without ``data``, a
version that is not a number, a key that is no Zotero key), is an error: taking it for
an empty library would flag every linked entry as deleted and move the watermark past
changes that were never read.

Examples:
    >>> items([{"key": "HF7B8SJU", "data": {"title": "T"}}])[0]["key"]
    'HF7B8SJU'
    >>> versions({"HF7B8SJU": 12})
    {'HF7B8SJU': 12}
    >>> items([{"key": "../x", "data": {}}])
    Traceback (most recent call last):
    ...
    tools.zotero.deadline.WrongAnswer: an item whose key is not a Zotero key ('../x')
"""

from __future__ import annotations

from typing import Any

from tools.catalog.console import printable
from tools.zotero.deadline import WrongAnswer
from tools.zotero.options import KEY


def _key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not KEY.fullmatch(value):
        raise WrongAnswer(f"{what} is not a Zotero key ({printable(repr(value))[:40]})")
    return value


def items(value: Any) -> list[dict[str, Any]]:
    """A list of item objects, each with a Zotero key and a ``data`` object."""
    if not isinstance(value, list):
        raise WrongAnswer(f"a {type(value).__name__} where a list of items belongs")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            raise WrongAnswer(f"an entry of the list that is no item ({type(item).__name__})")
        _key(item.get("key"), "an item whose key")
    return value


def versions(value: Any) -> dict[str, int]:
    """``{key: version}``: Zotero keys and whole numbers."""
    if not isinstance(value, dict):
        raise WrongAnswer(f"a {type(value).__name__} where versions by key belong")
    for key, version in value.items():
        _key(key, "a version whose key")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise WrongAnswer(f"a version that is no whole number for {key}")
    return value


def deleted_keys(value: Any) -> list[str]:
    """The ``items`` list of a ``/deleted`` answer."""
    if not isinstance(value, dict) or not isinstance(value.get("items", []), list):
        raise WrongAnswer("no list of deleted items")
    return [_key(key, "a deleted item whose key") for key in value.get("items", [])]
