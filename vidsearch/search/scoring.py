"""A query as vectors, and how frames score against it.

A query's `score` against a frame is the cosine between the frame and the weighted positive query; frames are ranked
by score − w_neg × (cosine with the negative), and a match must reach the minimum score both before and after that
subtraction, so what the negative names drops out.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..catalog import Catalog
from ..embed import Embedder
from ..errors import MediaError, QueryError
from ..extract import open_media
from ..extract.frames import picture_rgb
from ..preprocess import reduce_to
from ..store import Store
from .query import ImageQuery, Query, clean

# σ of a query's scores is never taken below this: a small or uniform index would otherwise split a static shot on
# decoder noise and show huge relative scores. CLIP cosines over a real library spread by 0.03-0.1.
STD_FLOOR = 0.01


def image_rgb(image: ImageQuery, side: int) -> np.ndarray:
    """An RGB uint8 array (shortest side at most `side`) from a file path, a PIL image or an RGB/grey array."""
    if isinstance(image, (str, os.PathLike)):
        try:
            media = open_media(os.fspath(image))
            try:
                if media.info.kind != "image":
                    raise QueryError(f"{image} is not an image.")
                return next(iter(media.frames(1.0, side))).rgb
            finally:
                media.close()
        except MediaError as e:
            raise QueryError(f"Cannot read {image}: {e}.") from None
    if isinstance(image, Image.Image):
        try:
            return picture_rgb(image, side)
        except (OSError, ValueError, SyntaxError) as e:
            raise QueryError(f"Cannot read the image: {e}.") from None
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.size == 0:
        raise QueryError("An image array must be HxWx3 RGB (or HxW grey).")
    return reduce_to(np.ascontiguousarray(a[:, :, :3], dtype=np.uint8), side)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def query_vectors(catalog: Catalog, embedder: Embedder | None, q: Query) -> tuple[np.ndarray, np.ndarray | None]:
    """(positive, negative) unit vectors. The positive one is the weighted mean of text, image and stored frame."""
    parts = []
    if clean(q.text):
        parts.append(q.w_text * embedder.encode_text([clean(q.text)])[0])
    if q.image is not None:
        parts.append(q.w_image * embedder.encode_images([image_rgb(q.image, embedder.decode_side)])[0])
    if q.like is not None:
        v = catalog.vectors([int(q.like)]).get(int(q.like))
        if v is None:
            raise QueryError(f"No frame {q.like} in the index.")
        parts.append(q.w_image * v)
    if not parts:
        raise QueryError("Give a text, an image or a frame to search for.")
    pos = np.sum(parts, axis=0)
    if not np.linalg.norm(pos) > 1e-6:
        raise QueryError("The weights cancel out: give at least one part of the query a weight above 0.")
    neg = embedder.encode_text([clean(q.negative)])[0] if clean(q.negative) else None
    return _unit(pos), neg


@dataclass
class Scorer:
    """A query's vectors and what its scores look like over the whole index."""

    pos: np.ndarray
    neg: np.ndarray | None
    w_negative: float
    mean: float
    std: float

    @classmethod
    def for_query(cls, store: Store, embedder: Embedder | None, q: Query) -> Scorer:
        pos, neg = query_vectors(store.catalog, embedder, q)
        sample = store.vectors.sample() @ pos
        std = float(sample.std()) if len(sample) > 1 else 0.0
        return cls(pos, neg, q.w_negative, float(sample.mean()) if len(sample) else 0.0, max(std, STD_FLOOR))

    @property
    def search_vector(self) -> np.ndarray:
        return self.pos if self.neg is None else self.pos - self.w_negative * self.neg

    def score(self, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosine with the query, ranking key: that cosine less w_negative × the cosine with the negative)."""
        s = vecs @ self.pos
        return s, (s if self.neg is None else s - self.w_negative * (vecs @ self.neg))

    def z(self, score: float) -> float:
        """The score in standard deviations above this query's mean over the whole index."""
        return (score - self.mean) / self.std
