"""vidsearch: semantic search over a video and photo library with CLIP and FAISS."""
from .errors import (
                     ClipError,
                     IndexMismatch,
                     MediaError,
                     ModelLoadError,
                     QueryError,
                     RayFailure,
                     RayMissing,
                     StoreError,
                     VidsearchError,
                     WriteError,
)
from .index import Index, Stats
from .ingest import Progress, Report
from .search import Hit

__all__ = ["ClipError", "Hit", "Index", "IndexMismatch", "MediaError", "ModelLoadError", "Progress", "QueryError",
           "RayFailure", "RayMissing", "Report", "Stats", "StoreError", "VidsearchError", "WriteError"]
__version__ = "0.1.0"
