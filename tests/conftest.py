import os
from pathlib import Path

import pytest

from media import segments_video

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
