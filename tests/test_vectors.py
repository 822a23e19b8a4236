"""The FAISS side: exact below the size limit, IVF above it, ids kept through adds, removals and reloads."""
import numpy as np

from vidsearch import vectors
from vidsearch.vectors import Vectors


def clustered(n, d=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d))
    x = centres[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_switches_to_ivf_past_the_limit_and_keeps_ids(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "EXACT_LIMIT", 1000)
    x = clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 7 + 5  # sparse, as frame ids become after removals
    v = Vectors.empty(32)
    v.add(ids[:800], x[:800])
    assert v.tuned() is v and not v.approximate
    v.add(ids[800:], x[800:])
    ivf = v.tuned()
    assert ivf.approximate and ivf.ntotal == 3000
    assert np.array_equal(np.sort(ivf.ids()), ids)

    exact = Vectors.empty(32)
    exact.add(ids, x)
    _, want = exact.search(x[:100], 10)
    _, got = ivf.search(x[:100], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)])
    assert recall >= 0.95

    ivf.remove(ids[:10])
    assert ivf.ntotal == 2990 and ids[0] not in set(ivf.ids())
    ivf.save(tmp_path / "v.faiss")
    back = Vectors.load(tmp_path / "v.faiss")
    assert back.approximate and back.index.nprobe == vectors.nprobe_for(back.index.nlist)
    assert np.array_equal(np.sort(back.ids()), np.sort(ivf.ids()))
    assert back.search(x[50:51], 1)[1][0][0] == ids[50]
    back.add(ids[:10], x[:10])  # removed sources come back without a rebuild
    assert back.search(x[3:4], 1)[1][0][0] == ids[3]

    assert back.tuned() is back  # not grown enough to retrain
    back.remove(ids[:2500])
    assert not back.tuned().approximate  # shrunk under the limit: exact again
