"""Which library version a sync has read up to: one typed record per library and selection.

A watermark lives in ``catalog/zotero/<source>/<library>[--collection-…][--tag-…].json``
and holds one library version per server (a web server, or a Zotero desktop's ID), so
the next run asks only for what changed since. It is saved together with the entry
files, all or nothing, and only when the whole run succeeded.

Examples:
    >>> mark = Watermark(path="zotero/web/groups-1.json", library="groups/1", source="web")
    >>> mark.servers["api.zotero.org"] = 42
    >>> mark.as_json()["library"], mark.as_json()["servers"]
    ('groups/1', {'api.zotero.org': 42})
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from tools.catalog import Store
from tools.zotero.client import LibraryRef
from tools.zotero.errors import SyncError


def watermark_path(
    source: str, library: LibraryRef, collection: str | None, tag: str | None
) -> str:
    """Where the watermark of one library (and collection or tag, if any) is kept.

    A collection or tag is a different selection with its own watermark: reusing the
    library's would skip items that changed while they were outside the selection.

    Examples:
        >>> watermark_path("web", LibraryRef("group", 2480461), None, None)
        'zotero/web/groups-2480461.json'
        >>> watermark_path("local", LibraryRef("user", 7), "ABCD2345", "to read")
        'zotero/local/users-7--collection-ABCD2345--tag-to-read-3d527aec.json'
    """
    name = library.path.replace("/", "-")
    if collection:
        name += f"--collection-{collection.upper()}"
    if tag:
        slug = "-".join(re.findall(r"[a-z0-9]+", tag.lower()))[:40]
        name += f"--tag-{slug}-{hashlib.sha1(tag.encode()).hexdigest()[:8]}"
    return f"zotero/{source}/{name}.json"


class Watermark(BaseModel):
    """The library versions already synced, one per server (a web server or a Zotero desktop).

    Attributes:
        path: The file, relative to the catalog folder (not part of its contents).
        library: ``users/<id>`` or ``groups/<id>``.
        source: ``web`` or ``local``.
        collection: The collection read, if only one was.
        tag: The tag read, if only items with one were.
        servers: Server name → the library version read up to.
    """

    model_config = ConfigDict(extra="ignore")

    path: str = Field(exclude=True)
    library: str
    source: str
    collection: str | None = None
    tag: str | None = None
    servers: dict[str, StrictInt] = Field(default_factory=dict)

    @classmethod
    def load(
        cls,
        store: Store,
        path: str,
        *,
        library: str,
        source: str,
        collection: str | None = None,
        tag: str | None = None,
    ) -> Watermark:
        """The stored watermark at ``path`` (no versions when there is none yet).

        The identity fields come from the run, not the file: the path already names them.

        Raises:
            SyncError: the file is malformed.
        """
        try:
            data = store.read_data(path)
        except ValueError as error:  # malformed JSON, reported as path:line
            raise SyncError(f"{error}; delete the file to sync everything again") from None
        stored: Any = {} if data is None else data
        malformed = SyncError(
            f"{store.root / path}: malformed watermark; delete the file to sync everything"
        )
        if not isinstance(stored, Mapping):
            raise malformed
        identity = {"library": library, "source": source, "collection": collection, "tag": tag}
        try:
            return cls.model_validate({**stored, **identity, "path": path})
        except ValidationError:
            raise malformed from None

    def as_json(self) -> dict[str, Any]:
        """The file's contents."""
        data = self.model_dump()
        data["servers"] = dict(sorted(self.servers.items()))
        return data

    def stage(self, store: Store) -> None:
        """Stage the file in ``store``, unless it already holds these versions."""
        if store.read_data(self.path) != self.as_json():
            store.write_data(self.path, self.as_json())
