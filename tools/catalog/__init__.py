"""The catalog: its data model, and the only code that reads or writes catalog files.

``catalog/papers/<id>.yaml`` holds one entry per paper, ``catalog/taxonomy.yaml`` the
survey's classes, ``catalog/people.yaml`` authors spelt two ways, ``catalog/results/``
published benchmark results, ``catalog/measurements/`` measured figures and
``catalog/evaluations/`` accuracies we measured ourselves (``python -m tools.evaluate``)
and ``catalog/zotero/`` the Zotero sync's watermarks. Every tool (check, export, measure,
site, Zotero sync, cite, notes) goes through this package, so the rules of the data live
in one place. It imports no other part of ``tools`` and never torch (only the check's
implementation cross-check imports the implementations).

The rooms, each with one job:

==================  ==========================================================
``paths``           where the project and the catalog live; paths shown to people
``model``           the pydantic models of an entry and the taxonomy
``complexity``      the big-O parser (``O(n sqrt(n))`` to a growth in ``n``)
``yamlio``          YAML with line numbers; problems as ``path:line: field: message``
``loader``          :func:`load_catalog`: every file, validated, every problem
``yamledit``        byte-exact edits of entry YAML (comments and quoting kept)
``files``           atomic writes of one file or of a set
``journal``         multi-file writes a crash leaves old or new, and their recovery
``lock``            one writer at a time (``catalog/.atlas.lock``)
``store``           :class:`Store`, the only writer: stage, validate, commit
``measurements``    the typed format of ``catalog/measurements/*.json``
``evaluations``     the typed format of ``catalog/evaluations/*.json`` (our own accuracies)
``results``         published benchmark results (``catalog/results/*.yaml``)
``people``          authors whose bylines spell them differently (``people.yaml``)
``schema``          the JSON Schema generated from the model
``check``           the check, with its implementation cross-check
``names``           name folding, slugs, "did you mean", the index of names
``filenames``       portable file names for literature notes
``mechanisms``      what the implementations declare, read without torch
``addresses``       site pages, pinned source links, ``impl:<id>`` references
``citations``       BibTeX, CSL-JSON and JSON of entries
``console``         text printed to a terminal: control characters shown, not obeyed
``project``         the project's identity: addresses, version, commit
``cli``             ``python -m tools.catalog check | export | schema``
==================  ==========================================================

Examples:
    >>> catalog = load_catalog()
    >>> catalog.entries["performer"].name
    'Performer'
    >>> catalog.problems
    []
"""

from tools.catalog.files import atomic_write, write_all
from tools.catalog.loader import Catalog, load_catalog
from tools.catalog.measurements import MeasurementError, MeasurementFile
from tools.catalog.model import (
    CITATION_FIELDS,
    FORMATS,
    Complexity,
    Entry,
    SurveyRow,
    TaxonomyClass,
    ZoteroLink,
)
from tools.catalog.paths import CATALOG_DIR, ROOT
from tools.catalog.store import Store
from tools.catalog.yamledit import FieldChange
from tools.catalog.yamlio import Problem

__all__ = [
    "CATALOG_DIR",
    "CITATION_FIELDS",
    "FORMATS",
    "ROOT",
    "Catalog",
    "Complexity",
    "Entry",
    "FieldChange",
    "MeasurementError",
    "MeasurementFile",
    "Problem",
    "Store",
    "SurveyRow",
    "TaxonomyClass",
    "ZoteroLink",
    "atomic_write",
    "load_catalog",
    "write_all",
]
