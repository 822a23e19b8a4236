"""The FAISS side of the index: a cache of the catalog's vectors (VectorCache) in an index of the kind its size
calls for (Vectors): exact search while that is fast, IVF above that, compressed IVF-PQ when the float vectors would
no longer fit comfortably in RAM.

Either way FAISS holds the catalog's frame ids itself, so adding and removing sources never needs a rebuild; an IVF
index is retrained only when the library has grown well past what it was trained on (which its number of lists,
saved in the file, tells whichever process opens it). The compressed kind keeps
PQ_BYTES a frame in RAM and ranks its candidates again by their exact vectors, read from the catalog on disk.
"""
from __future__ import annotations

import math
import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from .catalog import SourceFilter

# Above this many frames IVF answers clearly cheaper than exact search (3x at 1M frames, where exact still took under
# 100 ms on a quiet 2-core CPU: python -m benchmarks.bench search, docs/performance.md).
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
STATE = "vectors.state.npz"  # what the FAISS file reflects (catalog, generation) and the score sample then
MAPPED = os.name == "posix"  # Windows cannot replace a file another process maps, which the writer must
SAMPLE = 5000  # stored vectors a query is scored against to see what its scores over the whole index look like
# A filter that keeps at most this many frames is searched by brute force over their exact vectors, read once from
# the catalog and kept with the filter (32 MB at 512-d): exact whatever the index kind, and cheaper than FAISS's
# scan, which skips the other frames but still walks every list it probes. At 1M frames (IVF), 100 neighbours among
# the 10,000 frames of one folder took 1.0 ms by brute force against 12.7 ms with FAISS and a selector, among the
# 1,000 of one video 0.2 ms against 3.8 ms (p50, benchmarks/filters.py). Above, FAISS with a selector.
BRUTE_LIMIT = 16_384
SELECTIONS = 8  # filters whose kept frames a VectorCache remembers (per catalog generation) ...
SELECTIONS_BYTES = 64 << 20  # ... in at most this much memory (bitmaps and brute-force vectors)

# The exact vectors of frame ids (the catalog's: Store.frame_vectors); ids no longer there are left out.
Reader = Callable[[Sequence[int]], Mapping[int, np.ndarray]]


@dataclass(eq=False)
class Selection:
    """The frames a filter keeps: a bitmap over frame ids (bit i of byte i // 8, little-endian, as FAISS's
    IDSelectorBitmap reads it) and, when they are few, their ids and exact vectors for a brute-force search."""

    count: int  # frames kept
    total: int  # frames in the catalog
    bitmap: np.ndarray  # uint8
    ids: np.ndarray | None = None
    flat: faiss.IndexFlatIP | None = None  # their vectors, in the order of `ids`, when few
    _selector: faiss.IDSelector | None = field(default=None, repr=False)

    @classmethod
    def of(cls, ids: np.ndarray, total: int, top: int, vectors: np.ndarray | None = None) -> Selection:
        """The selection of these frame ids (top: the highest frame id there is), with their vectors to search
        them by brute force."""
        bits = np.zeros(top + 1, bool)
        bits[ids] = True
        flat = None
        if vectors is not None:
            flat = faiss.IndexFlatIP(vectors.shape[1])
            flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(len(ids), total, np.packbits(bits, bitorder="little"), np.asarray(ids, np.int64), flat)

    @classmethod
    def all_but(cls, excluded: np.ndarray, total: int, top: int) -> Selection:
        """Every frame id up to `top` but these: the cheap way to build a filter that keeps most frames."""
        bits = np.ones(top + 1, bool)
        bits[excluded] = False
        return cls(total - len(excluded), total, np.packbits(bits, bitorder="little"))

    @property
    def selector(self) -> faiss.IDSelector:
        if self._selector is None:  # reads self.bitmap in place: the selection keeps the array alive
            self._selector = faiss.IDSelectorBitmap(len(self.bitmap), faiss.swig_ptr(self.bitmap))
        return self._selector

    def brute(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of the kept frames, exactly. On FAISS's flat kernel, on the calling thread: NumPy's
        matrix product hands one query to OpenBLAS's threads, whose wake-ups cost ~20 ms a query on a busy
        machine (benchmarks/filters.py)."""
        scores, rows = _search(self.flat, queries, k)
        return scores, np.where(rows >= 0, self.ids[np.maximum(rows, 0)], -1)

    @property
    def nbytes(self) -> int:
        return self.bitmap.nbytes + (0 if self.flat is None else self.flat.ntotal * self.flat.d * 4)


class Vectors:
    def __init__(self, index: faiss.Index, trained_on: int = 0, mapped: bool = False):
        self.index = index
        self.trained_on = trained_on
        self.mapped = mapped  # read-only: FAISS crashes on adds and removes (see load)

    @classmethod
    def empty(cls, dim: int) -> Vectors:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path, mapped: bool = False) -> Vectors:
        """The index in a FAISS file; `mapped`: its vectors stay in the file, mapped into memory rather than read
        (a 2.1 GB IVF file at 1M frames opened in 0.09 s instead of 3.5 s, with no search cost seen once the OS has
        the pages: benchmarks/coldstart.py), and the index is read-only. POSIX only: Windows cannot replace a mapped
        file, which the writer must."""
        flags = faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE
        if mapped:
            flags |= faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
        index = faiss.read_index(str(path), flags)
        if isinstance(index, faiss.IndexIVF):
            _tune(index)  # not saved in the file
            return cls(index, trained_size(index.nlist), mapped)
        return cls(index, mapped=mapped)

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
        self._writable()
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))

    def remove(self, ids) -> None:
        self._writable()
        if len(ids):
            self.index.remove_ids(np.asarray(ids, np.int64))

    def _writable(self) -> None:
        if self.mapped:  # FAISS would crash writing to the mapped pages
            raise ValueError("A mapped index is read-only: load it unmapped to change it.")

    def search(self, queries: np.ndarray, k: int, read: Reader | None = None,
               selection: Selection | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest, -1 ids where there are fewer. With `read`, a compressed index ranks
        RERANK × k candidates by their exact vectors, so its scores and order are exact among them. With a
        `selection`, only the frames it keeps: by brute force when it holds their vectors, else FAISS skips the
        others as it scans (an IVF index probes more lists the fewer frames are kept, and all of them when that
        found fewer than k)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if selection is not None and selection.flat is not None:
            return selection.brute(queries, k)
        if self.kind != "ivfpq" or read is None:
            return self._search(queries, k, selection)
        _, cand = self._search(queries, min(RERANK * k, self.ntotal), selection)
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

    def _search(self, queries: np.ndarray, k: int, selection: Selection | None) -> tuple[np.ndarray, np.ndarray]:
        if selection is None:
            return _search(self.index, queries, k)
        if not self.approximate:
            return _search(self.index, queries, k, faiss.SearchParameters(sel=selection.selector))
        nlist, nprobe = self.index.nlist, self.index.nprobe
        # As many kept frames in the lists probed as an unfiltered search would scan, if they spread evenly.
        wide = min(nlist, math.ceil(nprobe * selection.total / max(selection.count, 1)))
        scores, ids = _search(self.index, queries, k, faiss.SearchParametersIVF(sel=selection.selector, nprobe=wide))
        if wide < nlist and (ids >= 0).sum(axis=1).min() < min(k, selection.count):
            # The kept frames gather in lists not probed (a folder of one scene): probe them all.
            scores, ids = _search(self.index, queries, k,
                                  faiss.SearchParametersIVF(sel=selection.selector, nprobe=nlist))
        return scores, ids

    def save(self, path: Path) -> None:
        """Atomically: readers see the old file or the new one, never a part."""
        os.replace(self.save_beside(path), path)

    def save_beside(self, path: Path) -> Path:
        """Write the index, synced to disk, to a temporary file beside `path` (to be renamed over it), and name it.
        Raises OSError or RuntimeError (FAISS's way of reporting a failed write), with no temporary file left."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            faiss.write_index(self.index, str(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except (RuntimeError, OSError):
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def outgrown(self) -> str | None:
        """The kind to rebuild this index as, if its size calls for another kind (exact up to EXACT_LIMIT frames,
        IVF up to COMPRESS_LIMIT, IVF-PQ above) or an IVF index holds RETRAIN_GROWTH times what it was trained on;
        else None."""
        want = kind_for(self.ntotal)
        if want == self.kind and (want == "exact" or self.ntotal <= RETRAIN_GROWTH * self.trained_on):
            return None
        return want

    def tuned(self, read: Reader | None = None) -> Vectors:
        """This index, or a rebuilt one of the kind its size calls for (see outgrown). A rebuild takes the exact
        vectors from `read` (needed once compressed)."""
        want = self.outgrown()
        if want is None:
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
            nlist = lists_for(len(ids))
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


def _search(index: faiss.Index, queries: np.ndarray, k: int,
            params: faiss.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray]:
    """index.search; one query runs on the calling thread alone. Splitting it over FAISS's OpenMP threads was 4x
    slower in a search process (40 vs 10 ms a query at 100k frames, cProfile), whose other runtimes' idle threads
    hold the cores. The setting is per thread, so a web server's concurrent queries and a writer's builds keep
    theirs."""
    if len(queries) != 1:
        return index.search(queries, k, params=params)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)


def lists_for(n: int) -> int:
    """The inverted lists of an IVF index trained on n frames."""
    return int(4 * math.sqrt(n))


def trained_size(nlist: int) -> int:
    """The fewest frames an IVF index of `nlist` lists was trained on (lists_for backwards): how a process that opens
    a saved index knows what it was trained on, since FAISS saves the lists and nothing else of the training."""
    return math.ceil(nlist * nlist / 16)


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
    indexed. The writer records beside the file (STATE) the catalog generation it reflects and the score sample at
    that generation: a new process that finds the catalog there maps the file and reads neither the catalog's ids nor
    the sample's vectors (at 1M frames 3.5 s of reading, 1.3 s of ids and sample: benchmarks/coldstart.py).
    Thread-safe."""

    def __init__(self, root: Path, catalog):
        self.path = Path(root) / VECTORS
        self.catalog = catalog
        self.dim = int(catalog.meta["dim"])
        self._lock = threading.RLock()
        self._vectors: Vectors | None = None
        self._file: tuple[int, int] | None = None  # (mtime_ns, size) of the FAISS file loaded
        self._generation = -1  # catalog generation that self._vectors reflects
        self._sample, self._sample_gen = np.zeros((0, self.dim), np.float32), -1
        self._selections: OrderedDict[SourceFilter, Selection] = OrderedDict()
        self._selections_gen = -1

    def search(self, queries: np.ndarray, k: int,
               where: SourceFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search (cosine, as all vectors are normalised) over the catalog as last committed; with
        `where`, over the frames of the sources it keeps only."""
        with self._lock:
            vectors = self.synced()
            selection = None if where is None else self.selection(where)
            n = vectors.ntotal if selection is None else min(selection.count, vectors.ntotal)
            if n == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            # re-ranks if compressed
            return vectors.search(queries, min(k, n), read=self.catalog.vectors, selection=selection)

    def selection(self, where: SourceFilter) -> Selection:
        """The frames `where` keeps, from the catalog (SQL on the sources and the frames' source index), kept
        until the catalog changes. A filter that keeps most frames is built from the few it leaves out."""
        with self._lock, self.catalog.snapshot() as gen:
            if gen != self._selections_gen:
                self._selections.clear()
                self._selections_gen = gen
            if where in self._selections:
                self._selections.move_to_end(where)
                return self._selections[where]
            kept, total, top = self.catalog.kept_by(where)
            if kept <= BRUTE_LIMIT:
                ids, vecs = self.catalog.vectors_by(where)
                selection = Selection.of(ids, total, top, vecs)
            elif kept <= total - kept:
                selection = Selection.of(self.catalog.frame_ids_by(where), total, top)
            else:
                selection = Selection.all_but(self.catalog.frame_ids_by(where, keep=False), total, top)
            self._selections[where] = selection
            while len(self._selections) > 1 and (len(self._selections) > SELECTIONS or sum(
                    s.nbytes for s in self._selections.values()) > SELECTIONS_BYTES):
                self._selections.popitem(last=False)  # the least recently used
            return selection

    def sample(self) -> np.ndarray:
        """Up to SAMPLE stored vectors picked at random (fixed seed), kept until the catalog changes."""
        with self._lock:
            self.synced()  # opening the FAISS file may find the sample saved beside it
            if self._sample_gen == self.catalog.generation():
                return self._sample
            with self.catalog.snapshot() as gen:  # the ids and their vectors from one state of the catalog
                ids = self.catalog.frame_ids()
                if len(ids) > SAMPLE:
                    ids = np.random.default_rng(0).choice(ids, SAMPLE, replace=False)
                vecs = self.catalog.vectors(ids.tolist())
            self._sample = np.stack(list(vecs.values())) if vecs else np.zeros((0, self.dim), np.float32)
            self._sample_gen = gen
            return self._sample

    def synced(self) -> Vectors:
        """The FAISS index, brought up to date with the catalog if it changed."""
        with self._lock:
            if self._vectors is None or self._stamp() != self._file:
                # First use, or the writer saved a newer file (perhaps of another kind): start from it.
                self._open()
            if self.catalog.generation() != self._generation:
                self._catch_up()
            return self._vectors

    def _open(self) -> None:
        """The FAISS file as it is, mapped (where MAPPED) and at a known generation if STATE says the file reflects
        the catalog as it is now; else read into memory, to be caught up."""
        stamp = self._stamp()
        state = self._state(stamp)
        if state is not None and state[0] == self.catalog.generation():
            try:
                vectors = Vectors.load(self.path, mapped=MAPPED)
            except RuntimeError:
                vectors = None
            if vectors is not None and self._stamp() == stamp:  # not replaced while it was opened
                self._vectors, self._file, self._generation = vectors, stamp, state[0]
                self._sample, self._sample_gen = state[1], state[0]
                return
        self._read()

    def _read(self) -> None:
        """The FAISS file read into memory, or an empty index where there is none or it is cut short (a full disk
        can cost FAISS the file's tail): either way at no known generation, for the catalog to fill in."""
        self._file, self._generation = self._stamp(), -1
        try:
            self._vectors = Vectors.load(self.path) if self._file else Vectors.empty(self.dim)
        except RuntimeError:
            self._vectors = Vectors.empty(self.dim)

    def _state(self, stamp: tuple[int, int] | None) -> tuple[int, np.ndarray] | None:
        """(generation, sample) that STATE records for the FAISS file of this stamp in this catalog, if it does."""
        if stamp is None:
            return None
        try:
            with np.load(self.path.with_name(STATE)) as saved:
                if (tuple(saved["stamp"].tolist()) != stamp or float(saved["catalog"]) != self._catalog_id
                        or saved["sample"].shape[1:] != (self.dim,)):
                    return None
                return int(saved["generation"]), saved["sample"].astype(np.float32)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # none, or damaged: it is only a cache
            return None

    def _save_state(self, tmp: Path, gen: int) -> None:
        """Record in STATE that the FAISS file `tmp` (about to replace self.path) reflects generation `gen`, with
        the score sample at it; or that nothing is known (gen -1). Best effort: the file is right without it."""
        path, part = self.path.with_name(STATE), self.path.with_name(STATE + ".tmp")
        try:
            sample = self.sample()
            if gen < 0 or self._sample_gen != gen:
                path.unlink(missing_ok=True)
                return
            st = tmp.stat()
            with open(part, "wb") as f:
                np.savez(f, stamp=np.array([st.st_mtime_ns, st.st_size], np.int64), catalog=self._catalog_id,
                         generation=gen, sample=sample)
            os.replace(part, path)
        except OSError:
            part.unlink(missing_ok=True)

    @property
    def _catalog_id(self) -> float:
        """Which catalog this is (a folder's catalog made again starts its generations over)."""
        return float(self.catalog.meta.get("created_at", -1))

    def _catch_up(self) -> None:
        if self._vectors.mapped:  # read-only: the changes go to a copy read into memory
            self._read()
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
            if self._vectors is None or self._vectors.mapped or self._generation != generations[0]:
                return
            self._vectors.remove(removed)
            if len(added):
                self._vectors.add(added, np.stack(vectors))
            self._generation = generations[1]

    def save(self) -> None:
        """Write the FAISS file (exact, IVF or IVF-PQ, as the size calls for) atomically. Raises OSError or
        RuntimeError (FAISS's way of reporting a failed write) with no temporary file left behind.

        A rebuild into another kind, or a retraining (minutes at a million frames), reads the catalog and writes
        the new file without holding this cache: searches go on with the index in memory until the new one takes
        its place. Saving an index as it is holds the cache while the file is written."""
        with self._lock:
            vectors, gen = self.synced(), self._generation
            want = vectors.outgrown()
            if want is None:
                self._put(vectors.save_beside(self.path), gen)
                return
            ids = vectors.ids()
        built = Vectors.build(want, self.dim, ids, self.catalog.vectors)
        tmp = built.save_beside(self.path)
        with self._lock:
            # Built from the catalog at `gen` only if nothing was committed while it read.
            self._put(tmp, gen if self.catalog.generation() == gen else -1)
            # What was committed after `gen` is caught up from the catalog by the next search.
            self._vectors, self._generation = built, gen

    def _put(self, tmp: Path, gen: int) -> None:
        self._save_state(tmp, gen)
        try:
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self._file = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
            return st.st_mtime_ns, st.st_size
        except FileNotFoundError:
            return None
