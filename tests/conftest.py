import os
from pathlib import Path

import pytest
from media import draw, segments_video
from PIL import Image

TINY_MODEL = "local-dir:" + str(Path(__file__).parent / "tiny_clip" / "model")

# Tests run offline: never let a hub client wait on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """The test CLIP (tests/tiny_clip), named the way a user names a local model."""
    return TINY_MODEL


@pytest.fixture(scope="session")
def shapes_video(tmp_path_factory) -> tuple[Path, list[tuple[float, float, str, str]]]:
    """A 12 s H.264 video of coloured shapes; returns (path, [(start, end, shape, colour)])."""
    plan = [(3, "circle", "red"), (3, "square", "blue"), (3, "triangle", "green"), (3, "circle", "yellow")]
    path = segments_video(tmp_path_factory.mktemp("media") / "shapes.mp4", plan)
    spans, t = [], 0.0
    for seconds, shape, colour in plan:
        spans.append((t, t + seconds, shape, colour))
        t += seconds
    return path, spans


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, tiny_model):
    """A two-source index (a 4 s video and a photo) for tests of the web layer's edges."""
    import vidsearch

    library = tmp_path_factory.mktemp("small") / "library"
    library.mkdir()
    segments_video(library / "clip.mp4", [(2, "circle", "red"), (2, "square", "blue")])
    Image.fromarray(draw("triangle", "green")).save(library / "green.png")
    idx = vidsearch.Index(tmp_path_factory.mktemp("small") / "index", model=tiny_model)
    idx.add([library])
    yield idx
    idx.close()
