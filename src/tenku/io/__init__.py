"""Video and image read/write (PyAV, H.264 yuv420p; Pillow for images and GIF)."""

from tenku.io.video import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    contact_sheet,
    from_uint8,
    iter_video,
    probe_video,
    read_image,
    read_video,
    save_contact_sheet,
    to_uint8,
    write_frames,
    write_gif,
    write_png,
    write_video,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "contact_sheet",
    "from_uint8",
    "iter_video",
    "probe_video",
    "read_image",
    "read_video",
    "save_contact_sheet",
    "to_uint8",
    "write_frames",
    "write_gif",
    "write_png",
    "write_video",
]
