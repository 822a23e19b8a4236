"""Frame sampling and media discovery, without a model."""
import os
import subprocess

import numpy as np
import pytest
from media import COLOURS, FFMPEG, draw, encode
from PIL import Image

from vidsearch.extract import MediaError, discover, open_media


def sample(path, interval=1.0):
    media = open_media(str(path))
    try:
        frames = list(media.frames(interval, 320))
        return media.info, frames
    finally:
        media.close()


def test_video_samples_every_interval_from_start_to_end(tmp_path):
    path = encode(tmp_path / "v.mp4", [draw("circle", "red")] * 250, fps=25)  # 10 s
    info, frames = sample(path, 1.0)
    assert info.kind == "video" and (info.width, info.height) == (320, 180)
    assert [f.t for f in frames] == pytest.approx([float(i) for i in range(10)], abs=1e-3)
    assert info.duration == pytest.approx(10.0, abs=0.05)
    assert [f.t for f in sample(path, 2.5)[1]] == pytest.approx([0, 2.52, 5, 7.52], abs=1e-3)  # 25 fps: 0.04 s grid


def test_frames_are_rgb(tmp_path):
    path = encode(tmp_path / "red.mp4", [draw("square", "red")] * 25, fps=25)
    _, frames = sample(path)
    centre = frames[0].rgb[frames[0].rgb.shape[0] // 2, frames[0].rgb.shape[1] // 2].astype(int)
    assert np.abs(centre - COLOURS["red"]).max() < 30, centre  # BGR would read (30, 30, 220)


def test_variable_frame_rate_timestamps_are_presentation_times(tmp_path):
    # 30 fps for 1 s, then one frame every 0.37 s, then a 2.5 s gap: frame_number / fps would be far off.
    pts = [i / 30 for i in range(30)] + [1 + 0.37 * i for i in range(1, 8)] + [6.0, 6.1, 6.2]
    frames = [draw("circle", "red" if i % 2 else "blue") for i in range(len(pts))]
    path = encode(tmp_path / "vfr.mp4", frames, fps=30, pts=pts)
    _, got = sample(path, 1.0)
    # Each mark k takes the first frame shown at or after k seconds.
    expected, nxt = [], 0.0
    for t in pts:
        if t + 1e-3 >= nxt:
            expected.append(t)
            nxt = (int((t + 1e-3) // 1.0) + 1) * 1.0
    one_frame = 1 / 30
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert abs(g.t - e) < one_frame, (g.t, e)


def test_rotation_metadata_is_applied(tmp_path):
    plain = encode(tmp_path / "plain.mp4", [draw("triangle", "green", (320, 180))] * 10, fps=10)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-display_rotation", "90", "-i", str(plain), "-c", "copy",
                    str(rotated)], check=True)
    info, frames = sample(rotated)
    assert frames[0].rgb.shape[:2] == (320, 180)  # portrait, as a player shows it
    assert (info.width, info.height) == (180, 320)
    upright = sample(plain)[1][0].rgb
    assert np.abs(frames[0].rgb.astype(int) - np.rot90(upright, 1)).mean() < 2  # turned 90° anticlockwise
    assert np.abs(frames[0].rgb.astype(int) - np.rot90(upright, 3)).mean() > 10


def test_image_modes_become_rgb(tmp_path):
    red = np.zeros((40, 60, 3), np.uint8)
    red[:] = COLOURS["red"]
    Image.fromarray(red).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    Image.fromarray(red).convert("L").save(tmp_path / "grey.png")
    rgba = Image.fromarray(red).convert("RGBA")
    rgba.putalpha(255)
    rgba.save(tmp_path / "rgba.png")
    Image.fromarray(np.full((40, 60), 40000, np.uint16)).save(tmp_path / "grey16.png")
    Image.fromarray(red).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(red).save(tmp_path / "really_a_png.jpg", format="PNG")
    for name in ["palette.png", "grey.png", "rgba.png", "grey16.png", "cmyk.jpg", "really_a_png.jpg"]:
        info, frames = sample(tmp_path / name)
        rgb = frames[0].rgb
        assert info.kind == "image" and rgb.dtype == np.uint8 and rgb.shape == (40, 60, 3), name
        px = rgb[20, 30].astype(int)
        if name.startswith("grey16"):
            assert 150 < px[0] < 170 and px[0] == px[1] == px[2], px  # 40000/65535 of white, not clipped to 255
        elif name.startswith("grey"):
            assert px[0] == px[1] == px[2]
        else:
            assert np.abs(px - COLOURS["red"]).max() < 40, (name, px)


def test_transparent_pixels_become_white(tmp_path):
    a = np.zeros((10, 10, 4), np.uint8)
    Image.fromarray(a, "RGBA").save(tmp_path / "clear.png")
    _, frames = sample(tmp_path / "clear.png")
    assert (frames[0].rgb == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :100] = COLOURS["red"]  # left half red
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = 6  # stored landscape; shown rotated 90° clockwise
    im.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    info, frames = sample(tmp_path / "rotated.jpg")
    rgb = frames[0].rgb
    assert rgb.shape[:2] == (200, 100) and (info.width, info.height) == (100, 200)
    assert np.abs(rgb[10, 50].astype(int) - COLOURS["red"]).max() < 40  # the red half is now on top


def test_big_photos_are_opened_small(tmp_path):
    Image.fromarray(np.full((3000, 4000, 3), 200, np.uint8)).save(tmp_path / "big.jpg")
    info, frames = sample(tmp_path / "big.jpg")  # asks for a shortest side of 320
    assert (info.width, info.height) == (4000, 3000)
    assert frames[0].rgb.shape[:2] == (320, 427)


@pytest.mark.parametrize("name,content,reason", [
    ("empty.mp4", b"", "empty"),
    ("text.mp4", b"this is not a video\n" * 50, "not a readable image or video"),
    ("text.jpg", b"this is not a photo\n" * 50, "not a readable image or video"),
])
def test_unreadable_files_raise_a_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MediaError, match=reason):
        sample(tmp_path / name)


def test_truncated_image_raises_a_reason(tmp_path):
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError, match="could not be decoded"):
        sample(tmp_path / "cut.png")


def test_discover_walks_recursively_skipping_hidden_index_and_loops(tmp_path):
    lib = tmp_path / "lib"
    (lib / "a" / "b").mkdir(parents=True)
    (lib / ".hidden").mkdir()
    (lib / "index").mkdir()
    for p in ["a/one.jpg", "a/b/two.mp4", ".hidden/three.jpg", "a/.four.jpg", "index/five.jpg", "notes.txt"]:
        (lib / p).write_bytes(b"x")
    Image.new("RGB", (8, 8)).save(lib / "a" / "no_extension", format="PNG")
    os.symlink(lib, lib / "a" / "b" / "loop")  # a symlink loop must end
    found = {os.path.relpath(c.path, lib) for c in discover([str(lib)], exclude=[str(lib / "index")])}
    assert found == {"a/one.jpg", "a/b/two.mp4", "a/no_extension"}
