"""Media discovery and frame sampling: files in, (timestamp, RGB frame) out."""
from ..errors import MediaError
from .discover import Candidate, discover
from .frames import Frame, MediaInfo, open_media

__all__ = ["Candidate", "Frame", "MediaError", "MediaInfo", "discover", "open_media"]
