"""Command line: `vidsearch index | search | info | clip | serve`. A thin layer over vidsearch.Index."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

import click

from .clips import parse_time
from .errors import (
    ClipError,
    IndexMismatch,
    MediaError,
    ModelLoadError,
    OcrMissing,
    QueryError,
    RayFailure,
    RayMissing,
    StoreError,
    WriteError,
)
from .format import fmt_bytes, fmt_span
from .index import Index, default_index_dir
from .ingest import DECODE_TIMEOUT, check_address
from .preprocess import LETTERBOX, MODEL, MODES
from .renders import DEFAULT_BYTES
from .search import PER_VIDEO, Query

index_option = click.option("--index", "index_dir", type=click.Path(file_okay=False), default=None,
                            help="Index folder (default: $VIDSEARCH_INDEX or ./vidsearch-index).")


PREPROCESS_SHOWN = {MODEL: "the model's own preprocessing",
                    LETTERBOX: "letterboxed (whole frame padded to the model's square)"}


def fail(message: str, code: int = 2) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def open_index(index_dir, **kwargs) -> Index:
    try:
        return Index(index_dir or default_index_dir(), **kwargs)
    except WriteError as e:  # a full disk: not a usage problem
        fail(str(e), 1)
    except (IndexMismatch, StoreError, ValueError) as e:
        fail(str(e))


@click.group()
@click.version_option(package_name="vidsearch")
def main() -> None:
    """Semantic search over your videos and photos: index them, then search by text or by image."""


def _ray_address(ctx, param, value):
    # `--ray` takes an optional value, so `--ray PATH` would read PATH as the address.
    if value and os.path.exists(value):
        raise click.BadParameter(f"{value!r} is a path; put --ray after the paths, or write --ray=ADDRESS.")
    try:
        check_address(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


def _speech_engine(ctx, param, value):
    # `--speech` takes an optional value, so `--speech PATH` would read PATH as the engine.
    if value and os.path.exists(value):
        raise click.BadParameter(f"{value!r} is a path; put --speech after the paths, or write --speech=ENGINE.")
    return value


speech_option = click.option(
    "--speech", is_flag=False, flag_value="whisper", default=None, metavar="[ENGINE]", callback=_speech_engine,
    help="Hear what is said and find it by its words, from now on (this index remembers it; what it holds is heard "
    "on this run): whisper (the default: Whisper base, downloaded on first use), whisper:MODEL (a size, or a folder "
    "holding one), or pocketsphinx (offline, US English). Needs pip install 'vidsearch[speech]'. After PATHS, or "
    "--speech=ENGINE.")


@main.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@click.option("--interval", type=float, default=None, help="Seconds between sampled video frames (default 1.0).")
@click.option("--model", default=None, help="open_clip model name, or local-dir:PATH (default ViT-B-32).")
@click.option("--pretrained", default=None, help="open_clip pretrained tag (default laion2b_s34b_b79k).")
@click.option("--preprocess", type=click.Choice(MODES), default=None,
              help="For a new index: feed pictures to the model as its own preprocessing does (model, the default), "
              "or whole, padded to a square (letterbox).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--decoders", type=click.IntRange(1, 64), default=None,
              help="Files decoded side by side (default: 2 on a CPU; beside a GPU one per 2 CPUs, up to 8).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              callback=_ray_address, help="Decode and embed on Ray workers: a local Ray, or the cluster at ADDRESS "
              "(after PATHS, or --ray=ADDRESS). Needs pip install 'vidsearch[ray]'.")
@click.option("--ray-workers", type=click.IntRange(1), default=None,
              help="Ray worker actors, one model each (default: one per GPU, else one per 2 CPUs).")
@click.option("--decode-timeout", type=click.FloatRange(min=0, min_open=True), default=DECODE_TIMEOUT,
              show_default=True, metavar="SECONDS", help="Skip a file whose decoding yields no frame for this long.")
@click.option("--reuse/--no-reuse", default=True, show_default=True,
              help="A sample unchanged since its video's last embedded one reuses that vector (no model pass).")
@click.option("--ocr/--no-ocr", default=None,
              help="Read the text in frames and find it by its words, from now on (this index remembers it; what it "
              "holds is read on this run; needs pip install 'vidsearch[ocr]'). --no-ocr reads no more text (the words "
              "read stay searchable). Default: as the index does.")
@click.option("--prune", is_flag=True,
              help="Remove the indexed files under PATHS that are offline (their folder is missing, empty or "
              "unreadable), naming each. Without it they are kept, marked offline.")
@speech_option
@click.option("--no-speech", is_flag=True, help="Hear no more speech (the lines heard stay searchable).")
def index_cmd(paths, index_dir, interval, model, pretrained, preprocess, device, batch_size, decoders, ray_address,
              ray_workers, decode_timeout, reuse, ocr=None, prune=False, speech=None, no_speech=False) -> None:
    """Index the videos and images under PATHS (new and changed files only).

    A PATH that does not exist is accepted only when the index holds files under it (a drive not mounted): they are
    kept, marked offline, or removed with --prune."""
    from tqdm import tqdm

    idx = open_index(index_dir, model=model, pretrained=pretrained, interval=interval, preprocess=preprocess,
                     device=device, batch_size=batch_size, decode_timeout=decode_timeout, decoders=decoders)
    _check_paths(idx, paths)
    speech = _check_speech(idx, speech, no_speech)
    bar = None

    def progress(p) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=p.files_total, unit="file", dynamic_ncols=True, file=sys.stderr)
        if bar.total != p.files_total:  # an index switched to --ocr: the sources whose text is read count too
            bar.total = p.files_total
        rate = p.frames / p.seconds if p.seconds else 0.0
        bar.set_postfix_str(f"{p.frames} frames ({p.embedded} embedded), {rate:.1f} frames/s", refresh=False)
        bar.update(p.files_done - bar.n)  # update(), not assignment, so tqdm's own files/s rate is right
        _say_note(bar, p)

    try:
        try:
            report = idx.add(paths, progress=progress, ray=False if ray_address is None else ray_address or True,
                             ray_workers=ray_workers, reuse=reuse, ocr=ocr, prune=prune, speech=speech)
        finally:  # before any error, so that it is not printed into the bar's line
            if bar is not None:
                bar.close()
    except (ModelLoadError, RayMissing, OcrMissing, IndexMismatch) as e:
        fail(str(e))
    except (RayFailure, StoreError) as e:  # StoreError: the index could not be written (a full disk)
        fail(str(e), 1)
    except (RuntimeError, OSError) as e:
        fail(f"the index at {idx.path} could not be written: {e}", 1)
    for path, reason in report.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    _echo_changes(report, prune)
    copies = f"{len(report.copies)} copies of indexed files (not read again), " if report.copies else ""
    moved = f"{len(report.moved)} moved (not embedded again), " if report.moved else ""
    click.echo(f"{len(report.added)} sources indexed ({report.frames_added} frames, {report.frames_embedded} "
               f"embedded), {moved}{copies}{report.unchanged} unchanged, "
               f"{len(report.skipped)} skipped, {len(report.removed)} removed in {report.seconds:.1f} s.")
    if report.text_read:
        click.echo(f"Read the text of {report.text_read} sources indexed before.")
    if report.transcribed:
        click.echo(f"Subtitles and speech: {report.lines} lines found in {report.transcribed} videos looked at.")
    if not report.added and not report.unchanged and not idx.stats().sources:
        fail("nothing could be indexed: no readable image or video under " + ", ".join(paths), 1)


def _check_speech(idx: Index, speech: str | None, no_speech: bool) -> str | bool | None:
    """What Index.add is told of speech; an engine named is loaded now, so that one that cannot be is said at once."""
    if speech and no_speech:
        fail("--speech and --no-speech ask for opposite things: give one.")
    if no_speech:
        return False
    if speech:
        try:
            idx.speech_engine(speech)
        except ModelLoadError as e:
            fail(str(e))
    return speech


def _check_paths(idx: Index, paths) -> None:
    """A PATH that does not exist is a typo, unless the index holds files under it (its drive is offline)."""
    missing = [p for p in paths if not os.path.lexists(p)]
    if not missing:
        return
    held = [s.path for s in idx.sources()] if idx.exists else []
    for p in missing:
        top = os.path.realpath(p)
        if not any(h == top or h.startswith(top.rstrip(os.sep) + os.sep) for h in held):
            fail(f"Path '{p}' does not exist.")


def _echo_changes(report, prune: bool) -> None:
    for path, problem in report.problems:  # a subtitle or a video's speech that could not be read
        click.echo(f"{path}: {problem}", err=True)
    for old, new in report.moved:
        click.echo(f"moved {old} -> {new} (not embedded again)")
    for path in report.removed:
        click.echo(f"removed {path} ({'offline or gone: --prune' if prune else 'file is gone'})")
    for top, kept in report.offline.items():
        click.echo(f"{len(kept)} sources under {top} are offline; kept (vidsearch index --prune {top} removes them)")
    if report.back:
        click.echo(f"{len(report.back)} offline sources are back (not embedded again)")


def _say_note(bar, p) -> None:
    """A run's note (the model's one-time preparation for this CPU), above the progress bar."""
    if p.note:
        bar.write(p.note, file=sys.stderr)


@main.command("search")
@click.argument("text", required=False)
@click.option("--image", type=click.Path(exists=True, dir_okay=False), help="Find moments that look like this image.")
@click.option("--like", type=int, default=None, help="Find moments like this stored frame (a frame_id).")
@click.option("--not", "negative", default=None, help="Push down and out what this text describes.")
@click.option("--w-text", type=float, default=1.0, show_default=True, help="Weight of TEXT.")
@click.option("--w-image", type=float, default=1.0, show_default=True, help="Weight of --image / --like.")
@click.option("--w-not", "w_negative", type=float, default=1.0, show_default=True, help="Weight of --not.")
@index_option
@click.option("-k", type=click.IntRange(1, 10000), default=10, show_default=True, help="Number of moments.")
@click.option("--min-score", type=float, default=None,
              help="Cosine score a match must reach (default: the index's, see `info`; -1 shows everything).")
@click.option("--per-video", type=click.IntRange(0), default=PER_VIDEO, show_default=True,
              help="At most this many moments from one video (0: no limit).")
@click.option("--kind", type=click.Choice(["video", "image"]), default=None, help="Only videos, or only photos.")
@click.option("--folder", type=click.Path(file_okay=False), default=None,
              help="Only what is in this folder or under it.")
@click.option("--after", default=None, metavar="YYYY-MM-DD",
              help="Only media made on or after this day (its own date where it has one, else the file's).")
@click.option("--before", default=None, metavar="YYYY-MM-DD",
              help="Only media made on or before this day.")
@click.option("--min-duration", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Only videos at least this long (leaves photos out).")
@click.option("--max-duration", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Only videos at most this long (leaves photos out).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, best first.")
def search_cmd(index_dir, as_json, **fields) -> None:
    """Search the index by TEXT, --image, --like or a mix, best moments first."""
    if fields["folder"]:
        fields["folder"] = os.path.realpath(fields["folder"])  # as the index stores paths: symlinks resolved
    query = Query(**fields)
    if not (query.text and query.text.strip()) and not query.image and query.like is None:
        fail("give a TEXT to search for, --image FILE or --like FRAME_ID.")
    idx = open_index(index_dir)
    try:
        hits = idx.search(query)
    except (ModelLoadError, QueryError, StoreError) as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps([{**h.as_json(), "path": h.source, "also_paths": h.also, "thumbnail": h.thumbnail}
                               for h in hits], indent=2))
        return
    min_score = query.min_score
    if not hits:
        click.echo("No results: nothing in the index matches the filters." if query.filtered else "No results.")
    elif hits[0].weak:
        click.echo(f"No good match (nothing scores {idx.min_score if min_score is None else min_score:g} or more); "
                   "the nearest:")
    for h in hits:
        where = fmt_span(h.start, h.end) if h.kind == "video" else "image"
        offline = "  [offline]" if h.offline else ""
        click.echo(f"{h.score:.3f}  z {h.z:+5.1f}  {where:>11}  {h.source}  (frame {h.frame_id}){offline}")
        for other in h.also:
            click.echo(f"{'also at':>32}  {other}")
        if h.words:
            click.echo("       on screen: " + " | ".join(w["text"] for w in h.words))
        for line in h.lines:  # said or subtitle: "..."
            click.echo(f"{line['layer']:>16}: \"{' / '.join(line['text'].splitlines())}\"")


@main.command("info")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(index_dir, as_json) -> None:
    """Show the index's model, interval, sources, frames, size and last run."""
    idx = open_index(index_dir)
    try:
        st = idx.stats()
        skipped = idx.skipped()
    except StoreError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps({**st.as_dict(), "skipped_files": [{"path": s.path, "reason": s.reason}
                                                                  for s in skipped]}, indent=2))
        return
    last = st.last_run
    click.echo(f"index:    {st.path}")
    click.echo(f"model:    {st.model}" + (f" ({st.pretrained})" if st.pretrained else "") + f", {st.dim}-d")
    click.echo(f"interval: {st.interval:g} s, minimum score {idx.min_score:g}")
    click.echo(f"pictures: {PREPROCESS_SHOWN[st.preprocess]}")
    copies = f", {st.copies} byte copies of them" if st.copies else ""
    click.echo(f"sources:  {st.sources} ({st.videos} videos, {st.images} images), {st.frames} frames{copies}")
    click.echo("text:     " + (f"read in frames (--ocr), {st.frames_with_words} frames with words" if st.reads_text
                               else "not read (`vidsearch index --ocr PATH` reads it)"))
    click.echo("said:     " + (f"heard with {st.speech}, " if st.speech else "speech not heard (--speech hears it), ")
               + f"{st.said_lines} lines heard, {st.subtitle_lines} subtitle lines")
    click.echo(f"skipped:  {st.skipped}" + "".join(f"\n  {s.path}: {s.reason}" for s in skipped))
    click.echo(f"size:     {fmt_bytes(st.size_bytes)}")
    if last:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["finished_at"]))
        embedded = f", {last['frames_embedded']} embedded" if "frames_embedded" in last else ""
        copies = f", {last['copies']} copies" if last.get("copies") else ""
        click.echo(f"last run: {when}: {last['added']} added ({last['frames_added']} frames{embedded}){copies}, "
                   f"{len(last['skipped'])} skipped, {len(last['removed'])} removed, {last['seconds']} s")


@main.command("clip")
@click.argument("source")
@click.argument("start")
@click.argument("end")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the MP4.")
@index_option
def clip_cmd(source, start, end, output, index_dir) -> None:
    """Write START to END of an indexed video to FILE as an MP4 (H.264/AAC), cut frame-accurately.

    SOURCE is a video's source id (`search --json` prints it) or its path; START and END are seconds (12.5) or
    m:ss (1:05). The clip starts with the frame shown at START and lasts END - START (at most 10 minutes)."""
    idx = open_index(index_dir)
    try:
        source_id = _video_id(idx, source)
        t0, t1 = parse_time(start), parse_time(end)
        path = idx.clip(source_id, t0, t1)
    except (ClipError, StoreError) as e:
        fail(str(e))
    except MediaError as e:
        fail(str(e), 1)
    try:
        shutil.copyfile(path, output)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}", 1)
    click.echo(f"{output}: {fmt_span(t0, t1)} of {idx.source(source_id).path} ({fmt_bytes(os.path.getsize(output))})")


def _video_id(idx: Index, source: str) -> int:
    """A source id from an id or an indexed file's path (an existing file wins over an id of the same digits)."""
    if os.path.exists(source):
        real = os.path.realpath(source)
        match = next((s.id for s in idx.sources() if s.path == real),
                     next((c.source_id for c in idx.copies() if c.path == real), None))
        if match is None:
            raise ClipError(f"{source} is not in the index at {idx.path}.")
        return match
    if source.isdigit():
        return int(source)
    raise ClipError(f"{source} is neither a source id nor a file.")


def _check_watch(paths, watch: bool, poll: float | None) -> None:
    if poll is not None and not watch:
        fail("--poll goes with --watch: `vidsearch serve PATH... --watch --poll SECONDS`.")
    if watch and not paths:
        fail("--watch needs the folders to watch: `vidsearch serve PATH... --watch`.")


def _watched_index(index_dir, device: str, settings: dict, ocr: bool = False, speech: str | None = None) -> Index:
    """The index `serve --watch` serves: a new one is created empty, its files indexed by the watcher's first run
    (which, with `ocr` or `speech`, reads the text or hears the speech of what it already holds too)."""
    idx = open_index(index_dir, device=device, **settings)
    try:
        if not idx.exists:
            idx.add([], ocr=ocr or None, speech=speech)
            return idx
        if ocr:
            idx.read_text()
        if speech:
            idx.listen(speech)
    except (ModelLoadError, OcrMissing) as e:
        fail(str(e))
    except (StoreError, RuntimeError, OSError) as e:  # StoreError: it could not be written (a full disk)
        fail(f"the index at {idx.path} could not be created: {e}", 1)
    return idx


def _watcher(idx: Index, paths, poll: float | None):
    from .watch import Watcher

    return Watcher(idx, paths, poll=poll, log=click.echo)


def _start_watching(watcher) -> None:
    watcher.start()
    how = "file events" if watcher.mode == "events" else f"polling every {watcher.poll_interval:g} s"
    click.echo(f"Watching {', '.join(watcher.paths)} for changes ({how}).")


@main.command("serve")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every address). Beyond loopback, the machine's name is allowed.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Another name the server is reached by (repeatable; .NAME allows its subdomains). Requests for "
                   "other names are refused, against DNS rebinding.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=20, show_default=True,
              help="Largest image a search may upload.")
@click.option("--debug", is_flag=True,
              help="Use Flask's development server and debugger instead of waitress (local development only).")
@click.option("--model", default=None, help="For a new index: open_clip model name, or local-dir:PATH.")
@click.option("--pretrained", default=None, help="For a new index: open_clip pretrained tag.")
@click.option("--interval", type=float, default=None, help="For a new index: seconds between sampled frames.")
@click.option("--preprocess", type=click.Choice(MODES), default=None,
              help="For a new index: model (the model's own preprocessing, default) or letterbox.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--auth", envvar="VIDSEARCH_AUTH", show_envvar=True, default=None, metavar="TOKEN",
              help="Require this token: open the page once with ?token=TOKEN, or send Authorization: Bearer TOKEN.")
@click.option("--watch", is_flag=True,
              help="Keep indexing PATHS while serving: new, changed and deleted files are taken in the background.")
@click.option("--poll", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="With --watch: look for changes every SECONDS instead of using file events (network mounts).")
@click.option("--ocr", is_flag=True, help="Read the text in frames of PATHS (as `index --ocr`).")
@speech_option
@click.option("--cache-gb", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_BYTES / 2**30,
              show_default=True, help="Disk kept for clips and browser-playable copies (least recently used go).")
@click.pass_context
def serve_cmd(ctx, paths, index_dir, host, port, allow_hosts, max_upload_mb, debug, model, pretrained, interval,
              preprocess, device, auth, watch, poll, ocr, cache_gb, speech=None) -> None:
    """Search in a browser: index PATHS first if given (new and changed files only), then serve the index; with
    --watch, serve at once and index PATHS in the background, then as files come, change and go."""
    if auth is not None and not auth.strip():
        fail("--auth needs a non-empty token.")
    _check_watch(paths, watch, poll)
    if ocr and not paths:
        fail("--ocr goes with the folders to index: `vidsearch serve PATH... --ocr`.")
    if speech and not paths:
        fail("--speech goes with the folders to index: `vidsearch serve PATH... --speech`.")
    hosts = _served_names(host, allow_hosts)
    settings = {"model": model, "pretrained": pretrained, "interval": interval, "preprocess": preprocess}
    if paths and not watch:
        ctx.invoke(index_cmd, paths=paths, index_dir=index_dir, device=device, ocr=ocr or None, speech=speech,
                   **settings)
    idx = (_watched_index(index_dir, device, settings, ocr, speech) if watch
           else open_index(index_dir, device=device))
    if not idx.exists:
        fail(f"no vidsearch index at {idx.path}: give the folders to index (`vidsearch serve PATH`).")
    idx.cache_bytes = int(cache_gb * 2**30)
    from .web import create_app

    click.echo(f"Loading {idx.model} ...")
    watcher = _watcher(idx, paths, poll) if watch else None
    try:
        app = create_app(idx, max_upload=int(max_upload_mb * 1024 * 1024), auth=auth, watcher=watcher,
                         hosts=hosts)
    except (ModelLoadError, StoreError) as e:
        fail(str(e))
    st = idx.stats()
    click.echo(f"Serving {st.sources} sources ({st.frames} frames) from {idx.path}")
    if watcher is not None:  # after the model loaded; its first run indexes PATHS
        _start_watching(watcher)
    if not _loopback(host) and not auth:
        click.echo("Warning: there is no login; everyone who can reach this address can see the library.", err=True)
    try:
        _run_server(app, host, port, debug, auth)
    except OSError as e:
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
    except KeyboardInterrupt:
        pass
    finally:
        if watcher is not None:
            watcher.stop()  # a run going ends after the source it is on
        idx.close()  # ends a running ffmpeg too


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _served_names(host: str, allowed: tuple[str, ...]) -> list[str]:
    """The names requests may give for the server (besides loopback ones): --host, --allow-host and, when it
    listens beyond loopback, the machine's name (and NAME.local, as mDNS announces it)."""
    import socket

    from .web.boundary import NAME

    for name in allowed:
        if not NAME.fullmatch(name):
            fail(f"--allow-host takes a host name or address such as nas.lan, without scheme or port: not {name}.")
    names = [host, *allowed]
    if not _loopback(host):
        machine = socket.gethostname().lower()
        names += [machine, machine.split(".")[0] + ".local"]
    return names


def _run_server(app, host: str, port: int, debug: bool, auth: str | None) -> None:
    if debug:
        app.run(host=host, port=port, debug=True, use_reloader=False)
        return
    import signal

    import waitress

    server = waitress.create_server(app, host=host, port=port, threads=8, ident="vidsearch")
    # Stopped by a service manager: unwind, so that serve's `finally` ends a running ffmpeg too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    shown = f"[{host}]" if ":" in host else host
    hint = " with ?token=TOKEN once" if auth else ""
    click.echo(f"Open http://{shown}:{server.effective_port}/{hint} in a browser (Ctrl+C to stop).")
    server.run()


if __name__ == "__main__":
    main()
