"""When a video or photo was made, as its own metadata says: a video container's creation date (QuickTime's
local creation date with its zone where a phone wrote one, else the `creation_time` tag of the container or its
video stream, which FFmpeg reads as UTC), a photo's EXIF DateTimeOriginal (else DateTimeDigitized, else DateTime,
in the camera's local time unless an EXIF offset says otherwise).

Read apart from the frames (frames.py): only the header is read, never a pixel, so it costs a few milliseconds a
file. Dates a camera writes when its clock was never set (1904, 1970, the future) count as none.
"""
from __future__ import annotations

import datetime as dt
import re
import time

import av
from PIL import Image

# QuickTime's own tag first: phones write the local time and zone there, `creation_time` in UTC.
VIDEO_TAGS = ("com.apple.quicktime.creationdate", "creation_time", "date")
EXIF_IFD = 0x8769
# (date tag, the tag of its UTC offset), best first: when the picture was taken, digitised, last changed.
EXIF_DATES = ((0x9003, 0x9011), (0x9004, 0x9012), (0x0132, 0x9010))
EARLIEST = dt.datetime(1971, 1, 1, tzinfo=dt.timezone.utc).timestamp()  # MP4's and UNIX's zero dates are unset clocks

_DATE = re.compile(r"(\d{4})[-:](\d{2})[-:](\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?\s*"
                   r"(Z|[+-]\d{2}:?\d{2})?$")


def created_time(path: str, kind: str) -> float | None:
    """When the media at `path` ("video" or "image") was made, as UNIX time, or None when its metadata does not
    say (the caller falls back to the file's mtime). Never raises for a damaged or odd file."""
    try:
        when = _video_time(path) if kind == "video" else _image_time(path)
    except Exception:  # metadata is a nicety: a file that decodes but has odd tags still indexes
        return None
    if when is None or not EARLIEST <= when <= time.time() + 86400:
        return None
    return when


def parse_timestamp(text: str, naive_utc: bool) -> float | None:
    """UNIX time of "2021-05-03T10:00:00.000000Z", "2021-05-03T12:00:00+0200" or EXIF's "2021:05:03 12:00:00". A
    time without a zone is UTC (naive_utc) or local time."""
    m = _DATE.match(text.strip().rstrip("\0").strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        when = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                           int((fraction or "0")[:6].ljust(6, "0")))
    except ValueError:  # "0000:00:00 00:00:00", 31 February
        return None
    if zone:
        when = when.replace(tzinfo=_zone(zone))
    elif naive_utc:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _zone(text: str) -> dt.timezone:
    if text == "Z":
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _video_time(path: str) -> float | None:
    with av.open(path, metadata_errors="ignore") as container:
        tagged = [container.metadata] + [s.metadata for s in container.streams.video]
        for tag in VIDEO_TAGS:
            for tags in tagged:
                value = tags.get(tag)
                when = parse_timestamp(value, naive_utc=True) if value else None
                if when is not None:
                    return when
    return None


def _image_time(path: str) -> float | None:
    with Image.open(path) as im:
        if im.format == "PNG" and "exif" not in im.info:
            return None  # a PNG's EXIF may follow the pixels: reading it would decode the whole picture
        exif = im.getexif()
        sub = exif.get_ifd(EXIF_IFD)
        for date_tag, offset_tag in EXIF_DATES:
            value = sub.get(date_tag) or exif.get(date_tag)
            if not isinstance(value, str) or not value.strip("\0 "):
                continue
            offset = sub.get(offset_tag)
            if isinstance(offset, str) and re.fullmatch(r"[+-]\d{2}:?\d{2}", offset.strip("\0 ")):
                value = value.strip("\0 ") + offset.strip("\0 ")
            when = parse_timestamp(value, naive_utc=False)
            if when is not None:
                return when
    return None
