"""Dataset import: read files, convert rows of known layouts to the normalised problem
schema, hash them for duplicates and check them against benchmarks. Django-free.

See docs/datasets.md for layouts, field mappings, auto-detection and errors.
"""

from .decontam import NgramIndex, Overlap, build_index
from .errors import DatasetError, RowError
from .hashing import content_hash, normalise_prompt
from .importer import Batch, ImportResult, convert_file, iter_converted, resolve_layout
from .latex import last_boxed
from .layouts import DOMAINS, Layout, detect, get_layout, layout_names
from .packaged import PackagedDataset, packaged_datasets
from .readers import Location, iter_rows

__all__ = [
    "DOMAINS",
    "Batch",
    "DatasetError",
    "ImportResult",
    "Layout",
    "Location",
    "NgramIndex",
    "Overlap",
    "PackagedDataset",
    "RowError",
    "build_index",
    "content_hash",
    "convert_file",
    "detect",
    "get_layout",
    "iter_converted",
    "iter_rows",
    "last_boxed",
    "layout_names",
    "normalise_prompt",
    "packaged_datasets",
    "resolve_layout",
]
