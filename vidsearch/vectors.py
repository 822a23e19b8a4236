"""The FAISS index behind the store: exact search while that is fast, an IVF index above that.

Either way FAISS holds the catalog's frame ids itself, so adding and removing sources never needs a rebuild; the
IVF index is retrained only when the library has grown well past what it was trained on.
"""
from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

# Above this many frames, exact search stops meeting its latency goal on a laptop CPU (benchmarks/bench.py search).
EXACT_LIMIT = 200_000
RETRAIN_GROWTH = 4  # retrain IVF when the index has grown this many times past its training size
TRAIN_PER_LIST = 40  # k-means sample per inverted list: enough for stable centroids, bounded training time


class Vectors:
    def __init__(self, index: faiss.Index, trained_on: int = 0):
        self.index = index
        self.trained_on = trained_on

    @classmethod
    def empty(cls, dim: int) -> "Vectors":
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> "Vectors":
        index = faiss.read_index(str(path))
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = nprobe_for(index.nlist)  # not saved in the file
            return cls(index, trained_on=index.ntotal)
        return cls(index)

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

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

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def save(self, path: Path) -> None:
        """Atomically: readers see the old file or the new one, never a part."""
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def tuned(self) -> "Vectors":
        """This index, or a rebuilt one of the kind its size calls for (exact below EXACT_LIMIT, else IVF)."""
        n = self.ntotal
        if n <= EXACT_LIMIT:
            return self if not self.approximate else self._rebuild_flat()
        if self.approximate and n <= RETRAIN_GROWTH * self.trained_on:
            return self
        return self._rebuild_ivf()

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.ids()
        if self.approximate:
            return ids, np.stack([self.index.reconstruct(int(i)) for i in ids])
        return ids, self.index.index.reconstruct_n(0, self.ntotal)  # flat: in id_map order

    def _rebuild_flat(self) -> "Vectors":
        ids, vecs = self._all()
        out = Vectors.empty(self.index.d)
        out.add(ids, vecs)
        return out

    def _rebuild_ivf(self) -> "Vectors":
        ids, vecs = self._all()
        n, d = vecs.shape
        nlist = int(4 * np.sqrt(n))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(n, min(n, TRAIN_PER_LIST * nlist), replace=False)
        ivf.train(vecs[np.sort(sample)])
        ivf.nprobe = nprobe_for(nlist)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # frame ids are sparse; reconstruct and remove need it
        ivf.add_with_ids(vecs, ids)
        return Vectors(ivf, trained_on=n)


def nprobe_for(nlist: int) -> int:
    """Lists searched per query: 1/16 of them kept recall@10 ≥ 0.95 on clustered synthetic data (bench.py search)."""
    return max(16, nlist // 16)
