"""Text layers: text that a text query matches word for word: the words on screen (read with --ocr) and the words
said (subtitles, and speech heard with --speech). A frame a layer matched ranks above every frame that only looks
related, passes the minimum score, and shows the lines that matched. Boosts add up, so a moment that matches in
several layers ranks above one that matches in one; among moments matched alike CLIP orders them, so a moment whose
picture matches too (reaches the minimum score) ranks above one whose picture does not.

A layer is one kind of text (`TextLayer`); a search asks every layer in LAYERS and sees them together through
`TextMatches`. Another kind (subtitles, speech) plugs in as one more class in LAYERS: it finds the frames its lines
cover, boosts them and fills in its own field of the hits it matched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..catalog import Line, SourceFilter
from ..ocr import match_expression, matched, query_terms
from ..store import Store
from .query import Hit, Query, clean

# A frame whose words match a text query has this added to its ranking key: above every frame that only looks
# related (keys are cosines, less a weighted one), while CLIP still orders the matches.
TEXT_BOOST = 10.0
TEXT_LIMIT = 1000  # frames matched by their words that one search takes in at most, best matches first
LINE_LIMIT = 200  # lines said or shown as subtitles that one search takes in at most, best matches first


class TextLayer(Protocol):
    """One kind of text in frames, as matched for one query."""

    ids: set[int]  # the frames matched, among the sources the search's filter keeps

    @classmethod
    def find(cls, store: Store, q: Query, where: SourceFilter | None) -> TextLayer:
        """The frames whose text of this kind matches the query's text."""

    def boost(self, ids: list[int], keys: np.ndarray) -> np.ndarray:
        """What to add to the ranking keys of these frames (0 where not matched), given their keys so far."""

    def shown(self, store: Store, hits: list[Hit]) -> None:
        """Fill in, on each hit, the lines of this kind that matched in its frame."""


@dataclass
class WordsOnScreen:
    """The frames whose words (read with --ocr) match a text query: see ocr.query_terms for what must match."""

    terms: list[list[str]]
    ids: set[int]

    @classmethod
    def find(cls, store: Store, q: Query, where: SourceFilter | None) -> WordsOnScreen:
        terms = query_terms(clean(q.text))
        expression = match_expression(terms)
        return cls(terms, set(store.catalog.text_matches(expression, where, TEXT_LIMIT)) if expression else set())

    def boost(self, ids: list[int], keys: np.ndarray) -> np.ndarray:
        return TEXT_BOOST * np.fromiter((i in self.ids for i in ids), dtype=bool, count=len(ids))

    def shown(self, store: Store, hits: list[Hit]) -> None:
        words = store.catalog.frame_words([h.frame_id for h in hits if h.frame_id in self.ids])
        for h in hits:
            h.words = matched(words.get(h.frame_id, []), self.terms)


@dataclass
class WordsSaid:
    """The lines of subtitles and of speech (the catalog's transcript lines) that match a text query, as ocr.query_terms
    says, and the frames each covers: from the frame on screen when the line starts to its end. A matched line is one
    moment: its frames rank alike (as its best one), and the hit spans the line, start to end."""

    lines: dict[int, Line]  # the lines matched, by id, best first
    covers: dict[int, int]  # frame id -> the best line matched that covers it
    ids: set[int] = field(init=False)

    def __post_init__(self):
        self.ids = set(self.covers)

    @classmethod
    def find(cls, store: Store, q: Query, where: SourceFilter | None) -> WordsSaid:
        expression = match_expression(query_terms(clean(q.text)))
        found = store.catalog.line_matches(expression, where, LINE_LIMIT) if expression else []
        covers: dict[int, int] = {}
        for line_id, frame_id in store.catalog.line_frames([ln.id for ln in found]):
            covers.setdefault(frame_id, line_id)  # `found` is best first, and so is what line_frames gives
        return cls({ln.id: ln for ln in found}, covers)

    def boost(self, ids: list[int], keys: np.ndarray) -> np.ndarray:
        best: dict[int, float] = {}  # line id -> the best key among its frames
        for i, key in zip(ids, keys):
            if i in self.covers:
                best[self.covers[i]] = max(best.get(self.covers[i], -np.inf), float(key))
        return np.array([TEXT_BOOST + best[self.covers[i]] - key if i in self.covers else 0.0
                         for i, key in zip(ids, keys)])

    def shown(self, store: Store, hits: list[Hit]) -> None:
        """Each hit with the matched lines of its video said or shown during its moment, spanning them."""
        for h in hits:
            said = [ln for ln in self.lines.values()
                    if ln.source_id == h.source_id and ln.start < h.end and ln.end > h.start]
            h.lines = [{"layer": ln.layer, "text": ln.text, "start": ln.start, "end": ln.end}
                       for ln in sorted(said, key=lambda ln: ln.start)]
            if h.frame_id in self.covers and said:
                h.start, h.end = min(ln.start for ln in said), max(ln.end for ln in said)


LAYERS: tuple[type[TextLayer], ...] = (WordsOnScreen, WordsSaid)  # in this order: WordsSaid lifts a line's frames
# to the best key among them, boosts of the layers before included


@dataclass
class TextMatches:
    """What every text layer matched for one query."""

    layers: list[TextLayer]
    ids: set[int] = field(init=False)  # the frames any layer matched

    def __post_init__(self):
        self.ids = set().union(*(layer.ids for layer in self.layers))

    @classmethod
    def find(cls, store: Store, q: Query, where: SourceFilter | None) -> TextMatches:
        return cls([layer.find(store, q, where) for layer in LAYERS])

    def joined(self, ids: list[int]) -> list[int]:
        """The nearest frames' ids and the matched ones'."""
        return ids + sorted(self.ids.difference(ids)) if self.ids else ids

    def boosted(self, ids: list[int], keys: np.ndarray) -> np.ndarray:
        """The ranking keys of these frames, with what each layer that matched any adds."""
        for layer in self.layers:
            if layer.ids:
                keys = keys + layer.boost(ids, keys)
        return keys

    def shown(self, store: Store, hits: list[Hit]) -> list[Hit]:
        """The hits, each with the lines of its frame that matched, layer by layer."""
        for layer in self.layers:
            layer.shown(store, hits)
        return hits
