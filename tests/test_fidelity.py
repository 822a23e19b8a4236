"""Every picture reaches the model as open_clip's own `preprocess` would feed it: the vectors vidsearch stores for
photos and video frames, and those of query images, equal open_clip's preprocess + encode_image of the same
picture (at full resolution, correctly oriented, RGB) to within cosine 0.995, for the test model (longest side,
padded) and a random-weight ViT-B-32 (shortest side, centre crop)."""
import json

import av
import cv2
import numpy as np
import open_clip
import pytest
import torch
from media import encode
from PIL import Image, ImageOps
from safetensors.torch import save_file

import vidsearch
from vidsearch.embed import Embedder
from vidsearch.extract.frames import to_rgb
from vidsearch.search import image_rgb

BOUND = 0.995


def textured(w: int, h: int, seed: int) -> np.ndarray:
    """Smooth colour fields, shapes and fine noise: detail at every scale, so that how a picture is shrunk shows."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(img, centre, int(rng.integers(2, max(3, min(w, h) // 4))), colour, -1, cv2.LINE_AA)
    noise = rng.normal(0, 12, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_pictures(folder) -> list:
    folder.mkdir()
    shapes = {"wide.jpg": (1280, 720), "four-three.png": (800, 600), "portrait.jpg": (720, 1280),
              "square.png": (500, 500), "big.jpg": (4000, 3000), "tiny.png": (40, 30)}
    for n, (name, (w, h)) in enumerate(shapes.items()):
        Image.fromarray(textured(w, h, n)).save(folder / name, quality=92)
    Image.fromarray(textured(640, 480, 10)).convert("L").save(folder / "grey.png")
    Image.fromarray(textured(600, 400, 11)).quantize(64).save(folder / "palette.png")
    rgba = np.dstack([textured(640, 360, 12), np.linspace(0, 255, 640, dtype=np.uint8)[None, :].repeat(360, 0)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise
    Image.fromarray(textured(960, 540, 13)).save(folder / "rotated.jpg", exif=exif, quality=92)
    return sorted(folder.iterdir())


def make_videos(folder) -> list:
    def frames(w, h, seed):
        base = textured(w + 100, h, seed)
        return [base[:, i * 4:i * 4 + w] for i in range(25)]  # a slow pan: every frame differs

    return [encode(folder / "pan.mp4", frames(640, 360, 20), fps=10, size=(640, 360)),
            encode(folder / "pan.mpg", frames(480, 272, 21), fps=10, size=(480, 272), codec="mpeg2video",
                   extra=["-q:v", "2"]),
            # Frames already small (short side under 4x the tiny model's input): decoded at their own size, so the
            # model's resize alone shrinks them, as open_clip's would (a scaled decode first left cosine 0.987).
            encode(folder / "small.mp4", frames(480, 270, 22), fps=10, size=(480, 270))]


@pytest.fixture(scope="module")
def random_vit_b32(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("vit-b-32")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"),
              "preprocess_cfg": {"size": 224, "mean": list(open_clip.OPENAI_DATASET_MEAN),
                                 "std": list(open_clip.OPENAI_DATASET_STD), "interpolation": "bicubic",
                                 "resize_mode": "shortest"}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return f"local-dir:{folder}"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    return make_pictures(root / "pictures"), make_videos(root)


@pytest.fixture(scope="module", params=["tiny", "vit-b-32"])
def indexed(request, library, tiny_model, tmp_path_factory):
    name = tiny_model if request.param == "tiny" else request.getfixturevalue("random_vit_b32")
    pictures, videos = library
    idx = vidsearch.Index(tmp_path_factory.mktemp("index"), model=name)
    report = idx.add([*pictures, *videos])
    assert not report.skipped
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    yield idx, Reference(model.eval(), preprocess)
    idx.close()


class Reference:
    """open_clip's own way: its preprocess and encode_image on the full-resolution picture."""

    def __init__(self, model, preprocess):
        self.model, self.preprocess = model, preprocess

    def __call__(self, pictures: list[Image.Image]) -> np.ndarray:
        with torch.inference_mode():
            v = self.model.encode_image(torch.stack([self.preprocess(p) for p in pictures])).numpy()
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def picture(path) -> Image.Image:
    return to_rgb(ImageOps.exif_transpose(Image.open(path)))


def stored(idx) -> dict:
    """path → (times, vectors) as the index keeps them."""
    return {s.path: idx.frames(s.id)[1:] for s in idx.sources()}


def test_stored_photo_vectors_are_open_clips(indexed, library):
    idx, reference = indexed
    kept = stored(idx)
    for path in library[0]:
        _, vectors = kept[str(path)]
        cosine = float(vectors[0] @ reference([picture(path)])[0])
        assert cosine >= BOUND, (path.name, cosine)


def test_stored_video_frame_vectors_are_open_clips_of_the_frame_at_that_time(indexed, library):
    idx, reference = indexed
    kept = stored(idx)
    for path in library[1]:
        times, vectors = kept[str(path)]
        assert len(times) == 3  # 2.5 s at a 1 s interval
        with av.open(str(path)) as container:  # a full decode, every frame at full size
            stream = container.streams.video[0]
            start = stream.start_time or 0
            full = {round(float((f.pts - start) * stream.time_base), 3): f.to_image()
                    for f in container.decode(stream)}
        want = reference([full[round(float(t), 3)] for t in times])
        cosines = np.sum(vectors * want, axis=1)
        assert cosines.min() >= BOUND, (path.name, cosines)


def test_a_small_video_is_decoded_at_its_own_size(indexed, library):
    """480x270 is under 4.5x either model's input: no scaled decode before the model's resize, so its vectors are
    open_clip's to within rounding (a scaled decode first gave 0.998 on these frames, 0.987 on others)."""
    idx, reference = indexed
    path = next(p for p in library[1] if p.name == "small.mp4")
    times, vectors = stored(idx)[str(path)]
    with av.open(str(path)) as container:
        full = [f.to_image() for f in container.decode(video=0)]
    cosines = np.sum(vectors * reference([full[round(float(t) * 10)] for t in times]), axis=1)
    assert cosines.min() >= 0.9995, cosines


def test_query_image_vectors_are_open_clips(indexed, library):
    idx, reference = indexed
    e = idx.embedder
    for path in library[0]:
        want = reference([picture(path)])[0]
        for given in (path, Image.open(path), np.asarray(picture(path))):  # a path, a PIL image, an RGB array
            got = e.encode_images([image_rgb(given, e.decode_side)])[0]
            assert float(got @ want) >= BOUND, (path.name, type(given).__name__)


def test_onnx_runtime_gives_pytorchs_vectors(random_vit_b32):
    fast, slow = Embedder(random_vit_b32), Embedder(random_vit_b32, backend="torch")
    squares = [fast.prepare(textured(w, h, i)) for i, (w, h) in enumerate([(640, 360), (300, 500), (224, 224)])]
    assert np.abs(fast.encode_prepared(squares) - slow.encode_prepared(squares)).max() < 1e-4
    assert fast._sessions["image"] is not None


def test_the_preprocessing_is_recorded_and_letterboxing_stays_a_choice(tmp_path, tiny_model, library):
    pictures, _ = library
    boxed = vidsearch.Index(tmp_path / "boxed", model=tiny_model, preprocess="letterbox")
    boxed.add(pictures[:2])
    assert vidsearch.Index(tmp_path / "boxed").stats().preprocess == "letterbox"
    with pytest.raises(vidsearch.IndexMismatch):
        vidsearch.Index(tmp_path / "boxed", preprocess="model")
    plain = vidsearch.Index(tmp_path / "plain", model=tiny_model)
    plain.add(pictures[:2])
    assert plain.stats().preprocess == "model"
    # The two ways feed the model different pictures of a wide photo (different pads): different vectors.
    a, b = (stored(i)[str(pictures[0])][1][0] for i in (boxed, plain))
    assert float(a @ b) < 0.9999
