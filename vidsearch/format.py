"""How times and sizes are shown to people, the same in the CLI and the web pages."""


def fmt_time(t: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    s = int(t)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def fmt_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"


def fmt_span(start: float, end: float) -> str:
    """A moment's span: 0:16–0:17."""
    return f"{fmt_time(start)}–{fmt_time(end)}"
