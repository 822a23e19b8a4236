"""Queries → vectors → moments: ranked, merged, spread over sources, with scores a user can judge.

A query is text, an image, a stored frame or a mix of them (each with a weight), plus an optional negative text.
One module per job:

| job | module |
|---|---|
| what is asked and what comes back: Query, Hit | `query.py` |
| filters (kind, folder, dates, durations) in the catalog's terms | `filters.py` |
| the query as vectors (text, image, stored frame), and how frames score against it | `scoring.py` |
| text layers (words on screen): matched frames boosted, their lines shown | `words.py` |
| consecutive samples that score alike → one moment | `moments.py` |
| a moment of another encoding of the same video → merged into the better one | `encodings.py` |
| spread over sources; thumbnails, copies and offline marks for the hits returned | `results.py` |
| one search start to end (how many frames to fetch, when to stop), one video's scores | `pipeline.py` |
"""
from ..errors import QueryError
from .encodings import COINCIDE, Merged, merge_encodings
from .filters import media_folders, parse_date, source_filter
from .moments import JOIN_SIGMAS, split_moments
from .pipeline import WEAK_SHOWN, search, video_scores
from .query import KINDS, PER_VIDEO, DateLike, Hit, ImageQuery, Query, other_names
from .scoring import STD_FLOOR, Scorer, image_rgb, query_vectors
from .words import LAYERS, TEXT_BOOST, TEXT_LIMIT, TextLayer, TextMatches, WordsOnScreen

__all__ = ["ALIKE_SHARE", "COINCIDE", "COPY_COSINE", "JOIN_SIGMAS", "KINDS", "LAYERS", "PER_VIDEO", "STD_FLOOR",
           "TEXT_BOOST", "TEXT_LIMIT", "WEAK_SHOWN", "DateLike", "Hit", "ImageQuery", "Merged", "Query", "QueryError",
           "Scorer", "TextLayer", "TextMatches", "WordsOnScreen", "image_rgb",
           "media_folders", "merge_encodings", "other_names", "parse_date", "query_vectors", "search",
           "source_filter", "split_moments", "video_scores"]
