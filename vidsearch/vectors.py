"""The FAISS side of the index: a cache of the catalog's vectors (VectorCache) in an index of the kind its size
calls for (Vectors): exact search while that is fast, IVF above that, compressed IVF-PQ when the float vectors would
no longer fit comfortably in RAM.

Either way FAISS holds the catalog's frame ids itself, so adding and removing sources never needs a rebuild; an IVF
index is retrained only when the library has grown well past what it was trained on. The compressed kind keeps
PQ_BYTES a frame in RAM and ranks its candidates again by their exact vectors, read from the catalog on disk.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import faiss
import numpy as np

# Above this many frames, exact search stops meeting its latency goal on a laptop CPU (benchmarks/bench.py search).
EXACT_LIMIT = 200_000
# Above this many frames, IVF's float vectors (2 KB a frame at 512-d) would take over 2 GB in every reader: compress.
# At 1M frames IVF-PQ held 93 B a frame against IVF's 2.1 KB, for recall@10 0.94 against 0.97 and ~35 ms more a
# query, spent reading the candidates' vectors (benchmarks/scale.py).
COMPRESS_LIMIT = 1_000_000
RETRAIN_GROWTH = 4  # retrain IVF when the index has grown this many times past its training size
TRAIN_PER_LIST = 40  # k-means sample per inverted list: enough for stable centroids, bounded training time
# Code bytes per frame, one per 8 dimensions at 512-d. 32 put 49 % of the exact top 10 among the first 200
# candidates against 64's 70 % (a one-off test at 300k frames), more than re-ranking wins back.
PQ_BYTES = 64
RERANK = 10  # a compressed index ranks RERANK × k candidates by their exact vectors (3 × k: recall@10 0.88)
CHUNK = 10_000  # vectors read from the catalog at a time while rebuilding
VECTORS = "vectors.faiss"
SAMPLE = 5000  # stored vectors a query is scored against to see what its scores over the whole index look like

# The exact vectors of frame ids (the catalog's: Store.frame_vectors); ids no longer there are left out.
Reader = Callable[[Sequence[int]], Mapping[int, np.ndarray]]


class Vectors:
    def __init__(self, index: faiss.Index, trained_on: int = 0):
        self.index = index
        self.trained_on = trained_on

    @classmethod
    def empty(cls, dim: int) -> Vectors:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> Vectors:
        index = faiss.read_index(str(path), faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE)
        if isinstance(index, faiss.IndexIVF):
            _tune(index)  # not saved in the file
            return cls(index, trained_on=index.ntotal)
        return cls(index)

    @property
    def kind(self) -> str:
        """"exact", "ivf" or "ivfpq"."""
        if isinstance(self.index, faiss.IndexIVFPQ):
            return "ivfpq"
        return "ivf" if isinstance(self.index, faiss.IndexIVF) else "exact"

    @property
    def approximate(self) -> bool:
        return self.kind != "exact"

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def ids(self) -> np.ndarray:
        if not self.ntotal:
            return np.zeros(0, np.int64)
        if not self.approximate:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self.index.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def add(self, ids, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))

    def remove(self, ids) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, np.int64))

    def search(self, queries: np.ndarray, k: int, read: Reader | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest, -1 ids where there are fewer. With `read`, a compressed index ranks
        RERANK × k candidates by their exact vectors, so its scores and order are exact among them."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.kind != "ivfpq" or read is None:
            return _search(self.index, queries, k)
        _, cand = _search(self.index, queries, min(RERANK * k, self.ntotal))
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, (q, c) in enumerate(zip(queries, cand)):
            got = read(c[c >= 0].tolist())
            if not got:
                continue
            have = np.fromiter(got.keys(), np.int64, len(got))
            s = np.stack(list(got.values())) @ q
            best = np.argsort(-s, kind="stable")[:k]
            scores[row, :len(best)], ids[row, :len(best)] = s[best], have[best]
        return scores, ids

    def save(self, path: Path) -> None:
        """Atomically: readers see the old file or the new one, never a part."""
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def tuned(self, read: Reader | None = None) -> Vectors:
        """This index, or a rebuilt one of the kind its size calls for: exact up to EXACT_LIMIT frames, IVF up to
        COMPRESS_LIMIT, IVF-PQ above. A rebuild takes the exact vectors from `read` (needed once compressed)."""
        want = kind_for(self.ntotal)
        if want == self.kind and (want == "exact" or self.ntotal <= RETRAIN_GROWTH * self.trained_on):
            return self
        if read is None:
            if self.kind == "ivfpq":
                raise ValueError("A compressed index is rebuilt from the exact vectors: pass read=.")
            read = self._reconstruct
        return Vectors.build(want, self.index.d, self.ids(), read)

    @classmethod
    def build(cls, kind: str, dim: int, ids: np.ndarray, read: Reader) -> Vectors:
        """A new index of this kind over these ids, reading their vectors CHUNK at a time: an IVF-PQ build holds
        only its training sample and codes in RAM."""
        ids = np.sort(ids)  # in id order: the catalog reads its rows in order
        if kind == "exact":
            out = cls.empty(dim)
        else:
            nlist = int(4 * np.sqrt(len(ids)))
            if kind == "ivf":
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
                index.set_direct_map_type(faiss.DirectMap.Hashtable)  # frame ids are sparse; reconstruct needs it
            else:
                index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, PQ_BYTES, 8, faiss.METRIC_INNER_PRODUCT)
            _tune(index)
            sample = np.sort(np.random.default_rng(0).choice(ids, min(len(ids), TRAIN_PER_LIST * nlist),
                                                             replace=False))
            index.train(np.concatenate([v for _, v in _chunks(sample, read)]))
            out = cls(index, trained_on=len(ids))
        for chunk_ids, vecs in _chunks(ids, read):
            out.add(chunk_ids, vecs)
        return out

    def _reconstruct(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return {int(i): self.index.reconstruct(int(i)) for i in ids}  # by id: IDMap2 and the IVF hashtable map them


def _chunks(ids: np.ndarray, read: Reader):
    """(ids, exact vectors) CHUNK at a time, leaving out ids that `read` no longer has."""
    for start in range(0, len(ids), CHUNK):
        got = read(ids[start:start + CHUNK].tolist())
        if got:
            yield np.fromiter(got.keys(), np.int64, len(got)), np.stack(list(got.values()))


def _search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """index.search; one query runs on the calling thread alone. Splitting it over FAISS's OpenMP threads was 4x
    slower in a search process (40 vs 10 ms a query at 100k frames, cProfile), whose other runtimes' idle threads
    hold the cores. The setting is per thread, so a web server's concurrent queries and a writer's builds keep
    theirs."""
    if len(queries) != 1:
        return index.search(queries, k)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(threads)


def kind_for(n: int) -> str:
    return "exact" if n <= EXACT_LIMIT else "ivf" if n <= COMPRESS_LIMIT else "ivfpq"


def _tune(index: faiss.IndexIVF) -> None:
    index.nprobe = nprobe_for(index.nlist)
    if isinstance(index, faiss.IndexIVFPQ):
        # Per-list distance tables are cheap to compute per query; precomputed ones cost nlist × 256 × M floats.
        index.use_precomputed_table = -1


def nprobe_for(nlist: int) -> int:
    """Lists searched per query: 1/16 of them kept recall@10 ≥ 0.95 on clustered synthetic data (bench.py search)."""
    return max(16, nlist // 16)


class VectorCache:
    """The FAISS file of an index folder: a cache of the catalog's vectors, replaced atomically by `save`.

    Whoever searches brings it up to date with the catalog first (only the difference: frame ids are never reused),
    so a stale or missing file is never wrong, only slower to open; that is how a server sees what another process
    indexed. Thread-safe."""

    def __init__(self, root: Path, catalog):
        self.path = Path(root) / VECTORS
        self.catalog = catalog
        self.dim = int(catalog.meta["dim"])
        self._lock = threading.RLock()
        self._vectors: Vectors | None = None
        self._file: tuple[int, int] | None = None  # (mtime_ns, size) of the FAISS file loaded
        self._generation = -1  # catalog generation that self._vectors reflects
        self._sample, self._sample_gen = np.zeros((0, self.dim), np.float32), -1

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search (cosine, as all vectors are normalised) over the catalog as last committed."""
        with self._lock:
            vectors = self.synced()
            if vectors.ntotal == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            return vectors.search(queries, min(k, vectors.ntotal), read=self.catalog.vectors)  # re-ranks if compressed

    def sample(self) -> np.ndarray:
        """Up to SAMPLE stored vectors picked at random (fixed seed), kept until the catalog changes."""
        with self._lock:
            gen = self.catalog.generation()
            if self._sample_gen != gen:
                ids = self.catalog.frame_ids()
                if len(ids) > SAMPLE:
                    ids = np.random.default_rng(0).choice(ids, SAMPLE, replace=False)
                vecs = self.catalog.vectors(ids.tolist())
                self._sample = np.stack(list(vecs.values())) if vecs else np.zeros((0, self.dim), np.float32)
                self._sample_gen = gen
            return self._sample

    def synced(self) -> Vectors:
        """The in-memory FAISS index, brought up to date with the catalog if it changed."""
        with self._lock:
            stamp = self._stamp()
            if self._vectors is None or stamp != self._file:
                # First use, or the writer saved a newer file (perhaps of another kind): start from it.
                try:
                    self._vectors = Vectors.load(self.path) if stamp else Vectors.empty(self.dim)
                except RuntimeError:  # cut short (a full disk can cost FAISS the file's tail): the catalog rebuilds it
                    self._vectors = Vectors.empty(self.dim)
                self._file, self._generation = stamp, -1
            if self.catalog.generation() != self._generation:
                self._catch_up()
            return self._vectors

    def _catch_up(self) -> None:
        with self.catalog.snapshot() as gen:  # the generation and the rows come from one state of the catalog
            have, want = self._vectors.ids(), self.catalog.frame_ids()
            self._vectors.remove(np.setdiff1d(have, want, assume_unique=True))
            missing = np.setdiff1d(want, have, assume_unique=True)
            if not len(have) and kind_for(len(want)) == "ivfpq":
                # No usable file: build the compressed index straight away rather than hold every float in RAM.
                self._vectors, missing = Vectors.build("ivfpq", self.dim, want, self.catalog.vectors), missing[:0]
            for ids, vecs in _chunks(missing, self.catalog.vectors):
                self._vectors.add(ids, vecs)
        self._generation = gen

    def apply(self, generations: list[int], removed: Sequence[int], added: Sequence[int],
              vectors: Sequence[np.ndarray]) -> None:
        """A write this process committed ([generation before, after]), applied without reading the catalog again;
        a cache not at the generation before catches up from the catalog on its next use instead."""
        with self._lock:
            if self._vectors is None or self._generation != generations[0]:
                return
            self._vectors.remove(removed)
            if len(added):
                self._vectors.add(added, np.stack(vectors))
            self._generation = generations[1]

    def save(self) -> None:
        """Write the FAISS file (exact, IVF or IVF-PQ, as the size calls for) atomically. Raises OSError or
        RuntimeError (FAISS's way of reporting a failed write) with no temporary file left behind."""
        with self._lock:
            self._vectors = self.synced().tuned(read=self.catalog.vectors)
            try:
                self._vectors.save(self.path)
            except (RuntimeError, OSError):
                self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)  # Vectors.save's temporary
                raise
            self._file = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
            return st.st_mtime_ns, st.st_size
        except FileNotFoundError:
            return None
