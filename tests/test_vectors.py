"""The FAISS side: exact below the size limit, IVF above it, IVF-PQ past the next, ids kept through adds, removals
and reloads."""
import faiss
import numpy as np
import pytest

from vidsearch import vectors
from vidsearch.store import Store
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


def compressing(monkeypatch):
    """Limits small enough for seconds: exact to 1,000 frames, IVF to 2,000, IVF-PQ above (8 bytes a frame)."""
    monkeypatch.setattr(vectors, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(vectors, "COMPRESS_LIMIT", 2000)
    monkeypatch.setattr(vectors, "PQ_BYTES", 8)


def test_compresses_past_the_limit_and_reranks_with_exact_vectors(tmp_path, monkeypatch):
    compressing(monkeypatch)
    x = clustered(6000)
    ids = np.arange(6000, dtype=np.int64) * 7 + 5
    catalog = dict(zip(ids.tolist(), x))  # what Store.frame_vectors reads from disk

    def read(want):
        return {i: catalog[i] for i in want if i in catalog}

    v = Vectors.empty(32)
    v.add(ids[:1500], x[:1500])
    v = v.tuned(read)
    assert v.kind == "ivf"
    v.add(ids[1500:], x[1500:])
    pq = v.tuned(read)
    assert pq.kind == "ivfpq" and pq.approximate and pq.ntotal == 6000
    assert np.array_equal(np.sort(pq.ids()), ids)
    assert pq.index.code_size == 8

    exact = Vectors.empty(32)
    exact.add(ids, x)
    q = clustered(100, seed=1)
    _, want = exact.search(q, 10)
    scores, got = pq.search(q, 10, read=read)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)]) >= 0.9
    assert np.allclose(scores[0], [catalog[i] @ q[0] for i in got[0]], atol=1e-6)  # re-ranked: exact cosines
    assert np.all(np.diff(scores, axis=1) <= 0)

    pq.remove(ids[:10])
    assert pq.ntotal == 5990 and ids[0] not in set(pq.ids())
    pq.save(tmp_path / "v.faiss")
    back = Vectors.load(tmp_path / "v.faiss")
    assert back.kind == "ivfpq" and back.index.nprobe == vectors.nprobe_for(back.index.nlist)
    assert back.index.use_precomputed_table == -1  # no nlist × 256 × M table in RAM
    assert np.array_equal(np.sort(back.ids()), np.sort(pq.ids()))
    assert back.search(x[50:51], 1, read=read)[1][0][0] == ids[50]
    back.add(ids[:10], x[:10])  # removed sources come back without a rebuild
    assert back.search(x[3:4], 1, read=read)[1][0][0] == ids[3]
    del catalog[int(ids[3])]  # gone from the catalog before FAISS caught up: never returned
    assert ids[3] not in back.search(x[3:4], 5, read=read)[1][0]

    assert back.tuned(read) is back  # not grown enough to retrain
    back.remove(ids[:4500])
    with pytest.raises(ValueError):
        back.tuned()  # its codes are lossy: only the catalog's vectors rebuild it
    assert back.tuned(read).kind == "ivf"  # shrunk under the limit


def test_store_search_reranks_from_the_catalog(tmp_path, monkeypatch):
    compressing(monkeypatch)
    x = clustered(3000)
    store = Store.create(tmp_path / "idx", model="m", pretrained="", dim=32, interval=1.0, min_score=0.2)
    for s in range(3):
        frames = []
        for i in range(1000):
            staged = tmp_path / f"{s}-{i}.jpg"
            staged.touch()
            frames.append((float(i), x[s * 1000 + i], staged))
        store.put_source(f"/v{s}.mp4", "video", 0, 0, 1000, 30, 64, 64, frames)
    store.save_vectors()

    reader = Store(tmp_path / "idx")  # another process: loads the compressed file the writer saved
    scores, ids = reader.vectors.search(x[:20], 10)
    assert reader.vectors.synced().kind == "ivfpq"
    vecs = reader.catalog.vectors(ids[0].tolist())
    assert np.allclose(scores[0], [vecs[i] @ x[0] for i in ids[0]], atol=1e-6)
    assert all(i + 1 in row for i, row in enumerate(ids))  # each frame finds itself (ids start at 1)
    (tmp_path / "idx" / "vectors.faiss").rename(tmp_path / "saved.faiss")
    fresh = Store(tmp_path / "idx")  # no file to start from: built compressed from the catalog, not exact first
    assert fresh.vectors.search(x[1000:1001], 1)[1][0][0] == 1001 and fresh.vectors.synced().kind == "ivfpq"
    (tmp_path / "saved.faiss").rename(tmp_path / "idx" / "vectors.faiss")
    store.remove_source("/v0.mp4")
    assert reader.vectors.search(x[:1], 10)[1][0].min() > 1000  # the reader syncs removals by id


def test_the_training_size_is_read_back_from_the_list_count():
    for n in range(1, 20_000):
        nlist = vectors.lists_for(n)
        assert vectors.trained_size(nlist) <= n and vectors.lists_for(vectors.trained_size(nlist)) == nlist


def test_ivf_retrains_after_growing_4x_over_several_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "EXACT_LIMIT", 50)
    x = clustered(400, d=16)
    root = tmp_path / "idx"
    Store.create(root, model="m", pretrained="", dim=16, interval=1.0, min_score=0.2).close()
    lists, at = [], 0
    for n in (60, 120, 180, 220, 260):  # each run a process of its own, adding less than 4x what it opened
        store = Store(root)
        staged = []
        for i in range(at, n):
            staged.append(tmp_path / f"{i}.jpg")
            staged[-1].touch()
        store.put_source(f"/v{n}.mp4", "video", 0, 0, n - at, 1, 16, 16,
                         [(float(i), x[i], f) for i, f in zip(range(at, n), staged)])
        store.save_vectors()
        store.close()
        lists.append(faiss.read_index(str(root / vectors.VECTORS)).nlist)
        at = n
    # Trained on 60 frames (30 lists, read back as at least 57 frames); grown past 4 × 57 only in the last run,
    # which retrains on 260 (64 lists).
    assert lists == [vectors.lists_for(60)] * 4 + [vectors.lists_for(260)]
    assert Store(root).vectors.search(x[250:251], 1)[1][0].tolist() == [251]


def library(root, tmp_path, x, sources, exact_limit=None):
    """A store whose sources each hold 100 of x's vectors, in order."""
    store = Store.create(root, model="m", pretrained="", dim=x.shape[1], interval=1.0, min_score=0.2)
    for s in sources:
        add(store, tmp_path, x, s)
    return store


def add(store, tmp_path, x, s):
    frames = []
    for i in range(s * 100, s * 100 + 100):
        staged = tmp_path / f"{store.root.name}-{i}.jpg"
        staged.touch()
        frames.append((float(i), x[i], staged))
    store.put_source(f"/v{s}.mp4", "video", 0, 0, 100, 30, 64, 64, frames)


def no_catalog_reads(monkeypatch, store):
    def refuse(*_):
        raise AssertionError("read the catalog's ids or vectors")
    monkeypatch.setattr(store.catalog, "frame_ids", refuse)
    monkeypatch.setattr(store.catalog, "vectors", refuse)


@pytest.mark.parametrize("limit", [100_000, 150])  # exact, IVF
def test_a_new_process_maps_the_file_the_writer_saved_and_reads_no_ids(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(vectors, "EXACT_LIMIT", limit)
    x = clustered(600)
    root = tmp_path / "idx"
    writer = library(root, tmp_path, x, range(4))
    writer.save_vectors()
    assert (root / vectors.STATE).is_file()
    want = Vectors.load(root / vectors.VECTORS).search(x[:30], 10)
    sample = writer.vectors.sample()

    reader = Store(root)  # a new process, opening the catalog as the writer left it
    with monkeypatch.context() as m:
        no_catalog_reads(m, reader)
        got = reader.vectors.search(x[:30], 10)
        assert np.array_equal(reader.vectors.sample(), sample)
    assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])
    assert reader.vectors.synced().mapped == vectors.MAPPED and reader.vectors.synced().kind == \
        ("exact" if limit > 600 else "ivf")

    # Writes after the file was mapped (another process's, then this one's): caught up on a copy in memory.
    add(writer, tmp_path, x, 4)
    assert reader.vectors.search(x[450:451], 1)[1][0].tolist() == [451]
    writer.close()
    add(reader, tmp_path, x, 5)
    reader.remove_source("/v0.mp4")
    assert reader.vectors.search(x[550:551], 1)[1][0].tolist() == [551]
    assert reader.vectors.search(x[:10], 10)[1].min() > 100
    assert not reader.vectors.synced().mapped


def test_a_state_that_does_not_describe_this_file_and_catalog_is_not_trusted(tmp_path, monkeypatch):
    x = clustered(400)
    one, two = tmp_path / "one", tmp_path / "two"
    writer = library(one, tmp_path, x, [0, 1])
    writer.save_vectors()
    add(writer, tmp_path, x, 2)  # committed, not saved: the state is a generation behind
    assert Store(one).vectors.search(x[250:251], 1)[1][0].tolist() == [251]

    # The folder's catalog made again (the old one deleted): the FAISS file and its state were of the old one.
    other = library(two, tmp_path, x, [0, 1])
    other.save_vectors()
    other.close()
    (two / "catalog.sqlite").unlink()
    library(two, tmp_path, x, [3, 2]).close()  # the same generation as the state, the same frame ids
    assert Store(two).vectors.search(x[350:351], 1)[1][0].tolist() == [51]

    # A newer file whose state could not be written: the old state names another file.
    writer.save_vectors()
    state = (one / vectors.STATE).read_bytes()
    add(writer, tmp_path, x, 3)
    monkeypatch.setattr(vectors.np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space")))
    writer.save_vectors()
    assert not (one / vectors.STATE).exists() or (one / vectors.STATE).read_bytes() == state
    monkeypatch.undo()
    (one / vectors.STATE).write_bytes(state)  # the older state back beside the newer file
    fresh = Store(one)
    assert fresh.vectors.search(x[350:351], 1)[1][0].tolist() == [351] and not fresh.vectors.synced().mapped

    (one / vectors.STATE).write_bytes(b"not a state")  # damaged: ignored
    assert Store(one).vectors.search(x[350:351], 1)[1][0].tolist() == [351]
