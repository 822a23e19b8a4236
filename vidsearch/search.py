"""Queries (text, image, stored frame) → vectors → ranked hits from the store."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

from .embed import Embedder
from .extract import MediaError, open_media
from .extract.frames import _to_rgb, shrink
from .store import Store, thumb_path

ImageQuery = Union[str, os.PathLike, Image.Image, np.ndarray]


class QueryError(ValueError):
    """A query that cannot be run; str() says why."""


@dataclass
class Hit:
    """One search result: a frame of a source, with its cosine score against the query."""

    frame_id: int
    source_id: int
    source: str  # absolute path of the video or image
    kind: str  # "video" or "image"
    t: float  # seconds into the video; 0 for images
    score: float
    thumbnail: str  # path of the frame's JPEG thumbnail

    def as_dict(self) -> dict:
        return asdict(self)


def image_rgb(image: ImageQuery) -> np.ndarray:
    """An RGB uint8 array (long side ≤ 320) from a file path, a PIL image or an RGB/grey array."""
    if isinstance(image, (str, os.PathLike)):
        try:
            media = open_media(os.fspath(image))
            try:
                if media.info.kind != "image":
                    raise QueryError(f"{image} is not an image.")
                return next(iter(media.frames(1.0))).rgb
            finally:
                media.close()
        except MediaError as e:
            raise QueryError(f"Cannot read {image}: {e}.") from None
    if isinstance(image, Image.Image):
        try:
            image.draft("RGB", (320, 320))
            return shrink(np.asarray(_to_rgb(ImageOps.exif_transpose(image)), dtype=np.uint8))
        except (OSError, ValueError, SyntaxError) as e:
            raise QueryError(f"Cannot read the image: {e}.") from None
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.size == 0:
        raise QueryError("An image array must be HxWx3 RGB (or HxW grey).")
    return shrink(np.ascontiguousarray(a[:, :, :3], dtype=np.uint8))


def query_vector(store: Store, embedder: Embedder | None, text: str | None = None, image: ImageQuery | None = None,
                 frame_id: int | None = None) -> np.ndarray:
    """The normalised query vector: the mean of whichever of text, image and stored frame are given."""
    parts = []
    if text is not None and text.strip():
        parts.append(embedder.encode_text([text.strip()])[0])
    if image is not None:
        parts.append(embedder.encode_images([image_rgb(image)])[0])
    if frame_id is not None:
        v = store.frame_vector(int(frame_id))
        if v is None:
            raise QueryError(f"No frame {frame_id} in the index.")
        parts.append(v)
    if not parts:
        raise QueryError("Give a text, an image or a frame id to search for.")
    q = np.mean(parts, axis=0)
    return (q / max(np.linalg.norm(q), 1e-12)).astype(np.float32)


def search(store: Store, q: np.ndarray, k: int = 10, min_score: float | None = None) -> list[Hit]:
    """The k best frames for query vector q, best first, dropping those under min_score."""
    if k < 1:
        raise QueryError("k must be at least 1.")
    scores, ids = store.search(q[None, :], k)
    rows = store.frames([int(i) for i in ids[0] if i >= 0])
    hits = []
    for score, fid in zip(scores[0], ids[0]):
        row = rows.get(int(fid))
        if row is None or (min_score is not None and score < min_score):
            continue  # removed since the vectors were read, or too weak
        hits.append(Hit(row["id"], row["source_id"], row["path"], row["kind"], round(float(row["t"]), 3),
                        float(score), str(thumb_path(Path(store.root), row["id"]))))
    return hits
