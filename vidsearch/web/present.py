"""Hits as the pages and the JSON API show them: display names, time labels and the URLs that open them."""
from __future__ import annotations

import base64
import io
import os
from collections import defaultdict

import numpy as np
from flask import url_for
from PIL import Image

from ..format import fmt_time
from ..search import Hit


def seconds(t: float) -> str:
    """A time for a URL: as short as it can be without losing the catalog's millisecond precision."""
    return f"{t:.3f}".rstrip("0").rstrip(".")


def watch_url(source_id: int, t: float, hit_frames: list[int]) -> str:
    return url_for("pages.watch", source_id=source_id, t=seconds(t), hits=",".join(map(str, hit_frames)) or None)


def hits_json(hits: list[Hit]) -> list[dict]:
    """One dict per hit. A video hit's watch URL carries the frame ids of every hit in the same video, so the watch
    page can link to them."""
    frames_by_source: dict[int, list[int]] = defaultdict(list)
    for h in hits:
        frames_by_source[h.source_id].append(h.frame_id)
    out = []
    for h in hits:
        video = h.kind == "video"
        out.append({
            "frame_id": h.frame_id,
            "source_id": h.source_id,
            "source": os.path.basename(h.source),
            "kind": h.kind,
            "t": h.t,
            "time": fmt_time(h.t) if video else None,
            "score": round(h.score, 4),
            "thumbnail_url": url_for("media.thumb", frame_id=h.frame_id),
            "watch_url": (watch_url(h.source_id, h.t, frames_by_source[h.source_id]) if video
                          else url_for("media.image", source_id=h.source_id)),
            "media_url": url_for("media.media", source_id=h.source_id),
        })
    return out


def preview_data_url(rgb: np.ndarray | None, size: int = 160) -> str | None:
    """A small JPEG data URL of an uploaded query image, to show what the results are for (uploads are not kept)."""
    if rgb is None:
        return None
    im = Image.fromarray(rgb)
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
