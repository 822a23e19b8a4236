"""A text query from a fresh process: the cached text tower and tokenizer (vidsearch.textcache) instead of
PyTorch, with the same vectors; the full path whenever the cache cannot be trusted; the export done once."""
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from media import draw
from open_clip.tokenizer import SimpleTokenizer
from PIL import Image

import vidsearch
from vidsearch import embed, index, textcache
from vidsearch.embed import Embedder, onnx_cache_dir
from vidsearch.textcache import TextEncoder

# Characters of many scripts and kinds: what the cleaning (ftfy, HTML entities, whitespace, case) and the pattern
# (letters, digits, the rest; contractions) treat differently.
POOLS = ["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789.,;:!?'\"-_()[]{}<>/\\@#$%^&*+=~`|",
         "éèêàçñüöäßøåÆŒœÉÀ", "αβγδΣΊΣΥΦΟΣς", "абвгдЖЩЫё", "中文日本語한국어カタカナ", "🎉😀👍🏽🇫🇷❤️‍🔥",
         "\t\n\r\u00a0\u2003\u200b\u3000\x1c\x85", "&amp;&lt;&#39;&nbsp;&eacute;", "’“”…–—", "ﬁﬂ①²½ⅣＡＢＣ",
         "'s 't 're 've 'm 'll 'd 'S 'LL ’s", "\u0301\u0308", "\U0001f9ff\U00010000\ufffd", "Ã©Ã¨ â€™"]
REAL = ["a red circle", "A Dog running on the BEACH at sunset", "l'homme qui marche, c'est lui", "Café déjà vu 🎉",
        "İstanbul'da bir kedi", "東京タワーの夜景", "the cat's pajamas", "don't stop me now", "", "   ",
        "&amp; <b>bold</b> &lt;tag&gt;", "mojibake: cafÃ©", "x" * 400, "word " * 100, "12.5 kg of 3D-printed parts"]


def strings(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        chars = [rng.choice(rng.choice(POOLS)) for _ in range(rng.randint(0, 80))]
        out.append("".join(chars))
    return REAL + out


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tokenizer_gives_open_clips_ids():
    simple = SimpleTokenizer()
    fast = textcache.build_tokenizer(simple)
    texts = strings(3000)
    for text in texts:
        assert fast.encode(textcache.clean(text), add_special_tokens=False).ids == simple.encode(text), repr(text)


def test_same_vectors_as_the_full_path(tiny_model, cache):
    full = Embedder(tiny_model)
    full.ready()
    light = TextEncoder.load(full.model_name, full.pretrained)
    assert light is not None
    texts = strings(300, seed=1)
    tokens, want = light.tokens(texts[:50]), full.tokenizer(texts[:50]).numpy()  # a 16-token context: truncated
    assert np.array_equal(tokens, want[:, :tokens.shape[1]]) and not want[:, tokens.shape[1]:].any()
    for batch in [texts[i:i + 25] for i in range(0, len(texts), 25)] + [[t] for t in texts[:40]]:
        assert np.abs(light.encode_text(batch) - full.encode_text(batch)).max() <= 1e-5


def test_export_is_said_and_done_once(tiny_model, cache, monkeypatch):
    exports = []
    real_export = embed._export
    monkeypatch.setattr(embed, "_export", lambda *a: (exports.append(a[-1].name), real_export(*a)))
    notes = []
    Embedder(tiny_model).ready(notes.append)
    assert sorted(n.split("-")[0] for n in exports) == ["image", "text"]
    assert len(notes) == 1 and notes[0].startswith("Preparing model for this CPU, once")
    again = Embedder(tiny_model)
    again.ready(notes.append)
    again.encode_text(["a red circle"])
    assert len(exports) == 2 and len(notes) == 1  # the same model and library versions: nothing exported again
    assert TextEncoder.load(again.model_name, again.pretrained) is not None


def test_indexing_says_it_prepares_the_model(tiny_model, cache, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    Image.fromarray(draw("circle", "red")).save(library / "red.png")
    notes = []
    with vidsearch.Index(tmp_path / "index", model=tiny_model) as idx:
        idx.add([library], progress=lambda p: p.note and notes.append(p.note))
    assert len(notes) == 1 and "once" in notes[0]
    assert TextEncoder.load(idx.model, idx.pretrained) is not None  # indexing filled the text query's cache


SEARCH = """
import json, sys
import vidsearch
with vidsearch.Index(sys.argv[1]) as idx:
    hits = idx.search("a red circle", min_score=-1)
print(json.dumps({"torch": "torch" in sys.modules, "open_clip": "open_clip" in sys.modules,
                  "hits": [[h.frame_id, round(h.score, 5)] for h in hits]}))
"""


def fresh_search(index_dir: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", SEARCH, str(index_dir)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def indexed(tiny_model, cache, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for shape, colour in [("circle", "red"), ("square", "blue"), ("triangle", "green")]:
        Image.fromarray(draw(shape, colour)).save(library / f"{colour}.png")
    with vidsearch.Index(tmp_path / "index", model=tiny_model) as idx:
        idx.add([library])
        idx.embedder  # noqa: B018 (loaded: the reference below takes the full path)
        want = [[h.frame_id, round(h.score, 5)] for h in idx.search("a red circle", min_score=-1)]
    return idx, want


def test_text_search_in_a_fresh_process_needs_no_torch(indexed):
    idx, want = indexed
    got = fresh_search(idx.path)
    assert not got["torch"] and not got["open_clip"]
    assert got["hits"] == want


def test_falls_back_to_the_model_when_the_cache_cannot_be_trusted(indexed):
    idx, want = indexed
    [description] = onnx_cache_dir().glob("textquery-*.json")
    meta = json.loads(description.read_text())

    description.write_text(json.dumps({**meta, "versions": {**meta["versions"], "torch": "0.1"}}))
    got = fresh_search(idx.path)  # other library versions: the model, which describes the export again
    assert got["torch"] and got["hits"] == want
    assert json.loads(description.read_text()) == meta
    assert not fresh_search(idx.path)["torch"]

    data = description.with_name(meta["onnx"] + ".data")
    data.write_bytes(data.read_bytes()[:-4])  # a damaged export is not used; the model exports it again
    got = fresh_search(idx.path)
    assert got["torch"] and got["hits"] == want
    assert not fresh_search(idx.path)["torch"]

    tokenizer = description.with_name(meta["tokenizer"])
    tokenizer.write_text(tokenizer.read_text()[:1000])
    got = fresh_search(idx.path)
    assert got["torch"] and got["hits"] == want
    assert not fresh_search(idx.path)["torch"]

    for path in onnx_cache_dir().iterdir():  # an empty cache: the model, which fills it
        path.unlink()
    got = fresh_search(idx.path)
    assert got["torch"] and got["hits"] == want
    assert not fresh_search(idx.path)["torch"]


def test_image_search_still_loads_the_model(indexed, monkeypatch):
    idx, _ = indexed
    monkeypatch.setattr(index, "TextEncoder", None)  # would fail if asked
    with vidsearch.Index(idx.path) as fresh:
        assert fresh.search(image=draw("circle", "red"), min_score=-1)
        assert fresh._embedder is not None


def test_warming_loads_each_thing_once_and_text_searches_do_not_wait_for_the_model(indexed, monkeypatch):
    idx, want = indexed
    loads, light, release = [], [], threading.Event()

    class Counted(Embedder):
        def __init__(self, *a, **kw):
            loads.append(1)
            assert release.wait(60)  # the model's load (seconds with PyTorch) still going on
            super().__init__(*a, **kw)

    real = TextEncoder.load
    monkeypatch.setattr(index, "Embedder", Counted)
    monkeypatch.setattr(index.TextEncoder, "load", lambda *a: (light.append(1), real(*a))[1])
    with vidsearch.Index(idx.path) as fresh:
        warming = fresh.warm()
        results = []
        searches = [threading.Thread(target=lambda: results.append(fresh.search("a red circle", min_score=-1)))
                    for _ in range(3)]
        for t in searches:
            t.start()
        for t in searches:
            t.join(timeout=30)  # answered while the model is held loading
        assert not any(t.is_alive() for t in searches) and fresh._embedder is None and len(light) == 1
        release.set()
        warming.join()
        assert len(loads) == 1 and fresh._embedder is not None
        results.append(fresh.search("a red circle", min_score=-1))  # now through the model: the same vectors
        assert len(results) == 4 and all([[h.frame_id, round(h.score, 5)] for h in r] == want for r in results)
        assert len(light) == 1


def test_a_model_that_cannot_load_makes_web_searches_a_503(tiny_model, cache, tmp_path):
    import shutil

    from vidsearch.web import create_app

    model = tmp_path / "model"
    shutil.copytree(tiny_model.removeprefix("local-dir:"), model)
    library = tmp_path / "library"
    library.mkdir()
    Image.fromarray(draw("circle", "red")).save(library / "red.png")
    with vidsearch.Index(tmp_path / "index", model=f"local-dir:{model}") as idx:
        idx.add([library])
    for weights in model.glob("*.safetensors"):
        weights.unlink()
    with vidsearch.Index(tmp_path / "index") as idx:
        client = create_app(idx).test_client()  # answers at once; the model loads (and fails) in the background
        res = client.get("/api/search", query_string={"q": "a red circle"})
        assert res.status_code == 503 and "no weights file" in res.get_json()["error"]
        assert client.get("/api/search", query_string={"like": 1}).status_code == 200  # needs no model
