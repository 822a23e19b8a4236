"""Text layers: text found in frames that a text query matches word for word (today: the words on screen, read
with --ocr). A frame a layer matched ranks above every frame that only looks related, passes the minimum score, and
shows the lines that matched.

A layer is one kind of text (`TextLayer`); a search asks every layer in LAYERS and sees them together through
`TextMatches`. Another kind (subtitles, speech) plugs in as one more class in LAYERS: it finds the frames its lines
cover, boosts them and fills in its own field of the hits it matched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..catalog import SourceFilter
from ..ocr import match_expression, matched, query_terms
from ..store import Store
from .query import Hit, Query, clean

# A frame whose words match a text query has this added to its ranking key: above every frame that only looks
# related (keys are cosines, less a weighted one), while CLIP still orders the matches.
TEXT_BOOST = 10.0
TEXT_LIMIT = 1000  # frames matched by their words that one search takes in at most, best matches first


class TextLayer(Protocol):
    """One kind of text in frames, as matched for one query."""

    ids: set[int]  # the frames matched, among the sources the search's filter keeps

    @classmethod
    def find(cls, store: Store, q: Query, where: SourceFilter | None) -> TextLayer:
        """The frames whose text of this kind matches the query's text."""

    def boost(self, ids: list[int]) -> np.ndarray:
        """What to add to the ranking keys of these frames (0 where not matched)."""

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

    def boost(self, ids: list[int]) -> np.ndarray:
        return TEXT_BOOST * np.fromiter((i in self.ids for i in ids), dtype=bool, count=len(ids))

    def shown(self, store: Store, hits: list[Hit]) -> None:
        words = store.catalog.frame_words([h.frame_id for h in hits if h.frame_id in self.ids])
        for h in hits:
            h.words = matched(words.get(h.frame_id, []), self.terms)


LAYERS: tuple[type[TextLayer], ...] = (WordsOnScreen,)


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
                keys = keys + layer.boost(ids)
        return keys

    def shown(self, store: Store, hits: list[Hit]) -> list[Hit]:
        """The hits, each with the lines of its frame that matched, layer by layer."""
        for layer in self.layers:
            layer.shown(store, hits)
        return hits
