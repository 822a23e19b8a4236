"""A full disk under `vidsearch index`: real ENOSPC from a small filesystem, at a different moment each trial.

    sudo mount -t tmpfs -o size=8m tmpfs /mnt/small    # any small filesystem you may write to
    python -m benchmarks.diskfull /mnt/small [--trials 20]
    python -m benchmarks.diskfull --quick               # 1 trial on an 8 MB tmpfs of its own (unshare)

Indexes a small library A into a fresh index on that filesystem, fills the filesystem to leave a different amount
of free space each trial (from nothing to 2.5 times what library B needs), then indexes library B into the
same index. Each trial checks that the run either finished or raised WriteError (and which write failed: a
thumbnail, the catalog or the FAISS file), that the index then opens on the still-full disk, still has A, finds
A's red circle, has every frame's thumbnail and nothing staged or half-saved; then frees the space, re-runs, and
compares the catalog with a clean run's. One more run goes through the CLI, the disk filling halfway through:
exit status 1, one line on stderr, no traceback. Prints the trials and the failures (goal 0).

--quick without a folder mounts its own tmpfs in a private user and mount namespace (`unshare -rm`, as an
unprivileged user can where user namespaces are allowed); where that is refused it says so and exits 0.
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from benchmarks.common import FFMPEG, ROOT, draw, segments_video
from benchmarks.common import TINY as MODEL
from vidsearch.errors import StoreError, WriteError
from vidsearch.index import Index


def build(work: Path, busy: int = 6, seconds: int = 20) -> tuple[Path, Path]:
    a, b = work / "a", work / "b"
    segments_video(a / "red.mp4", [(3, "circle", "red"), (3, "square", "blue")])
    a.mkdir(exist_ok=True)
    Image.fromarray(draw("triangle", "green", (200, 150))).save(a / "green.png")
    b.mkdir()
    for i in range(busy):  # busy pictures: thumbnails of 10 KB and more
        subprocess.run([FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i",
                        f"testsrc2=size=320x180:rate=25:duration={seconds},hue=h={60 * i}", "-c:v", "libx264",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(b / f"busy{i}.mp4")], check=True)
    return a, b


def catalog(index: Path) -> set[tuple[str, float]]:
    with Index(index) as idx:
        return {(s.path, round(float(t), 3)) for s in idx.sources()
                for t in idx.frames(s.id)[1]}


def check(idx: Index, a: Path) -> None:
    """What must hold after a run, finished or stopped by the full disk."""
    index = idx.path
    paths = {s.path for s in idx.sources()}
    assert {str(a / "red.mp4"), str(a / "green.png")} <= paths, "library A is gone"
    hit = idx.search("a red circle", k=1)[0]
    assert hit.source == str(a / "red.mp4") and (hit.start, hit.end) == (0, 3), f"search finds {hit}"
    ids = []
    for s in idx.sources():
        fids = idx.frames(s.id)[0]
        assert len(fids) == s.frames > 0, f"{s.path}: {len(fids)} of {s.frames} frames"
        ids += fids
    missing = [i for i in ids if not idx.thumbnail(i).is_file()]
    assert not missing, f"{len(missing)} thumbnails missing"
    stray = {int(p.stem) for p in (index / "thumbs").glob("*/*.jpg")} - set(ids)
    assert not stray, f"{len(stray)} thumbnails of no frame"
    assert not list((index / "thumbs" / "staging").iterdir()), "staged thumbnails left"
    assert not (index / "vectors.faiss.tmp").exists(), "a half-saved FAISS file left"


def fill(fs: Path, leave: int) -> Path:
    filler = fs / "filler"
    free = shutil.disk_usage(fs).free
    with open(filler, "wb") as f:
        chunk = b"\0" * 65536
        left = max(0, free - leave)
        try:
            while left > 0:
                left -= f.write(chunk[:min(len(chunk), left)])
        except OSError:
            pass
    return filler


def which(e: WriteError) -> str:
    cause = e.__cause__
    if isinstance(cause, sqlite3.Error):
        return "catalog"
    if isinstance(cause, RuntimeError):
        return "FAISS file"
    return "thumbnail"


def on_own_tmpfs() -> int:
    """Run `--quick` again inside a private user and mount namespace, on an 8 MB tmpfs mounted there."""
    with tempfile.TemporaryDirectory() as mnt:
        script = (f"mount -t tmpfs -o size=8m tmpfs {mnt} || exit 77; "
                  f"exec {sys.executable} -m benchmarks.diskfull {mnt} --quick")
        try:
            proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True)
        except FileNotFoundError:
            proc = None
        if proc is None or proc.returncode == 77 or proc.stderr.startswith("unshare:"):
            why = "no unshare" if proc is None else proc.stderr.strip()[:200]
            print(f"Could not mount a small filesystem here ({why}): nothing measured; give one as FS.")
            return 0
        sys.stderr.write(proc.stderr)
        return proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fs", type=Path, nargs="?", help="a folder on a small filesystem (it is filled up)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="1 trial (a full disk); without FS, on a tmpfs of its own")
    opts = ap.parse_args()
    if opts.quick:
        opts.trials = 1
        if opts.fs is None:
            sys.exit(on_own_tmpfs())
    if opts.fs is None:
        ap.error("give a folder on a small filesystem (or --quick)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        a, b = build(work, 2, 6) if opts.quick else build(work)
        clean = work / "clean"
        with Index(clean, model=MODEL) as idx:
            idx.add([a])
            idx.add([b])
        expected = catalog(clean)
        needed = sum(f.stat().st_size for f in clean.rglob("*") if f.is_file())
        print(f"clean run: {len(expected)} frames, {needed / 1e6:.2f} MB of index; "
              f"{opts.fs} has {shutil.disk_usage(opts.fs).free / 1e6:.2f} MB free")
        failures, stopped = 0, {}
        for trial in range(opts.trials):
            index = opts.fs / f"trial{trial}"
            leave = int(needed * 2.5 * trial / max(1, opts.trials - 1))  # the catalog's WAL needs room too
            filler = None
            outcome, problem = "finished", None
            try:
                with Index(index, model=MODEL) as idx:
                    idx.add([a])
                # Opened before the disk fills, as a running server and the run itself would be.
                reader, writer = Index(index), Index(index)
                reader.search("a red circle")
                filler = fill(opts.fs, leave)
                try:
                    writer.add([b])
                except WriteError as e:
                    outcome = f"stopped at a {which(e)} write"
                    stopped[which(e)] = stopped.get(which(e), 0) + 1
                writer.close()
                check(reader, a)  # on the still-full disk
                reader.close()
                try:  # opening afresh needs a little space: it may be refused, but in one sentence
                    with Index(index) as idx:
                        check(idx, a)
                except StoreError as e:
                    outcome += "; a fresh open refused in one sentence"
                    assert str(e).count(".") == 1 and "disk is full" in str(e), str(e)
                filler.unlink()
                filler = None
                with Index(index) as idx:
                    check(idx, a)
                    idx.add([b])
                    check(idx, a)
                got = catalog(index)
                if got != expected:
                    problem = f"catalog differs: {len(got - expected)} extra, {len(expected - got)} missing"
            except Exception as e:  # noqa: BLE001 - any way a trial can fail is a finding
                problem = f"{type(e).__name__}: {e}"
            finally:
                if filler is not None:
                    filler.unlink()
                shutil.rmtree(index, ignore_errors=True)
            failures += problem is not None
            print(f"trial {trial:2d}: {leave / 1e3:7.0f} KB free: {outcome}: {problem or 'ok'}", flush=True)

        index = opts.fs / "cli"
        with Index(index, model=MODEL) as idx:
            idx.add([a])
        filler = fill(opts.fs, needed // 2)
        proc = subprocess.run([sys.executable, "-m", "vidsearch.cli", "index", str(b), "--index", str(index)],
                              capture_output=True, text=True)
        filler.unlink()
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        cli_ok = proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr
        shutil.rmtree(index, ignore_errors=True)
        print(f"CLI on a full disk: exit {proc.returncode}, {errors[0] if errors else proc.stderr[-300:]!r}")
        failures += not cli_ok
        print(f"trials: {opts.trials}, stopped by the full disk: {sum(stopped.values())} "
              f"({', '.join(f'{n} at a {k} write' for k, n in sorted(stopped.items()))}), failures: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
