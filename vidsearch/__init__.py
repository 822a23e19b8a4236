"""vidsearch: semantic search over a video and photo library with CLIP and FAISS."""
from .embed import ModelLoadError
from .index import Index, IndexMismatch, Stats
from .ingest import Progress, Report
from .search import Hit, QueryError
from .store import StoreError

__all__ = ["Index", "Hit", "Stats", "Report", "Progress", "IndexMismatch", "ModelLoadError", "QueryError",
           "StoreError"]
__version__ = "0.1.0"
