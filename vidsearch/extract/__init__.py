"""Media discovery and frame sampling: files in, (timestamp, RGB frame) out."""
import os

# FFmpeg inside OpenCV prints "moov atom not found" and the like for every broken file; vidsearch reports those
# itself, once, with the path. Must be set before cv2 is imported.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

from .discover import Candidate, discover  # noqa: E402
from ..errors import MediaError  # noqa: E402
from .frames import Frame, MediaInfo, open_media  # noqa: E402

__all__ = ["Candidate", "discover", "Frame", "MediaError", "MediaInfo", "open_media"]
