import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tenku.io import (
    contact_sheet,
    from_uint8,
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


def clip(t: int = 9, h: int = 48, w: int = 64) -> np.ndarray:
    """A red square moving right over grey, plus a static blue bar."""
    v = np.full((t, h, w, 3), 128, np.uint8)
    v[:, h - 8:h - 2, 2:w - 2] = (40, 60, 220)
    for i in range(t):
        x = 4 + 4 * i
        v[i, 10:22, x:x + 12] = (230, 40, 40)
    return v


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if ".tmp-" in p.name)


@pytest.mark.parametrize("fps", [12.0, 30000 / 1001, 12.5])
def test_mp4_round_trip(tmp_path, fps):
    v = clip()
    out = write_video(tmp_path / "a.mp4", v, fps, crf=18)
    assert out == tmp_path / "a.mp4" and out.is_file()
    got, got_fps = read_video(out)
    assert got.dtype == np.uint8 and got.shape == v.shape
    assert got_fps == pytest.approx(fps, rel=1e-12)
    assert np.abs(got.astype(np.int16) - v).mean() < 3
    # the square moved: decoded frames differ where the source frames differ
    assert np.abs(got[0].astype(np.int16) - got[-1]).mean() > 5
    assert leftovers(tmp_path) == []


def test_probe_h264_yuv420p_faststart(tmp_path):
    p = write_video(tmp_path / "a.mp4", clip(), 8)
    info = probe_video(p)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"], info["frames"], info["fps"]) == (64, 48, 9, 8.0)
    assert info["duration"] == pytest.approx(9 / 8)
    data = p.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: index before payload


def test_max_frames(tmp_path):
    p = write_video(tmp_path / "a.mp4", clip(), 8)
    got, fps = read_video(p, max_frames=4)
    assert got.shape == (4, 48, 64, 3) and fps == 8.0
    assert read_image(p).shape == (48, 64, 3)  # a video's first frame
    with pytest.raises(ValueError, match="max_frames"):
        read_video(p, max_frames=0)


def test_odd_size_padded_by_edge_replication(tmp_path):
    v = clip(h=47, w=63)
    v[:, 39:45] = 128  # bar edges would straddle 2x2 chroma blocks at this height: not what we test
    v[:, -1, :] = (0, 200, 0)  # last row green so the padded row must be green too
    p = write_video(tmp_path / "odd.mp4", v, 8)
    info = probe_video(p)
    assert (info["width"], info["height"]) == (64, 48)
    got, _ = read_video(p)
    assert got.shape == (9, 48, 64, 3)
    assert np.abs(got[:, :47, :63].astype(np.int16) - v).mean() < 3
    pad_row, last_row = got[:, 47].astype(np.int16), got[:, 46].astype(np.int16)
    assert np.abs(pad_row - last_row).mean() < 3  # replicated, not black/grey
    assert (pad_row[:, 8:56, 1] > 150).all() and (pad_row[:, 8:56, [0, 2]] < 50).all()
    assert np.abs(got[:, :, 63].astype(np.int16) - got[:, :, 62]).mean() < 3


def test_odd_size_error(tmp_path):
    with pytest.raises(ValueError, match="63x47"):
        write_video(tmp_path / "odd.mp4", clip(h=47, w=63), 8, odd="error")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((9, 48, 64, 3), np.float32),
        np.zeros((48, 64, 3), np.uint8),
        np.zeros((9, 48, 64, 4), np.uint8),
        np.zeros((0, 48, 64, 3), np.uint8),
        torch.zeros(9, 48, 64, 3, dtype=torch.uint8),
    ],
)
def test_bad_frames_rejected_and_no_file(tmp_path, bad):
    with pytest.raises(ValueError, match=r"uint8.*got"):
        write_video(tmp_path / "x.mp4", bad, 8)
    assert list(tmp_path.iterdir()) == []


def test_bad_args_rejected(tmp_path):
    v = clip()
    for kwargs, msg in [({"fps": 0}, "fps"), ({"fps": float("nan")}, "fps"), ({"fps": 8, "crf": 60}, "crf"),
                        ({"fps": 8, "odd": "crop"}, "odd")]:
        with pytest.raises(ValueError, match=msg):
            write_video(tmp_path / "x.mp4", v, **kwargs)
    with pytest.raises(ValueError, match="webm"):
        write_video(tmp_path / "x.webm", v, 8)
    assert list(tmp_path.iterdir()) == []


def test_atomic_failure_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    import av

    p = write_video(tmp_path / "a.mp4", clip(), 8)
    before = p.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("encoder died")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", boom)
    with pytest.raises(RuntimeError, match="encoder died"):
        write_video(p, clip(), 8)
    assert p.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_writers_create_parents_and_normal_permissions(tmp_path):
    p = write_video(tmp_path / "a" / "b" / "c.mp4", clip(), 8)
    assert p.is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_mkv_and_mov(tmp_path):
    for name in ("a.mkv", "a.mov"):
        got, fps = read_video(write_video(tmp_path / name, clip(), 10))
        assert got.shape == (9, 48, 64, 3) and fps == 10.0


def test_gif_round_trip(tmp_path):
    v = clip()
    p = write_video(tmp_path / "a.gif", v, 10)  # suffix picks GIF
    got, fps = read_video(p)
    assert got.shape == v.shape and fps == 10.0
    assert np.abs(got.astype(np.int16) - v).max() <= 2  # few colours: palette is exact
    info = probe_video(p)
    assert (info["codec"], info["frames"], info["fps"]) == ("gif", 9, 10.0)
    assert b"NETSCAPE2.0" in p.read_bytes()  # loop extension
    write_gif(tmp_path / "b.gif", v, 8)  # 125 ms -> 13 cs
    assert read_video(tmp_path / "b.gif")[1] == pytest.approx(100 / 13)
    assert leftovers(tmp_path) == []


def test_png_and_image_read(tmp_path):
    img = clip()[3]
    p = write_png(tmp_path / "sub" / "f.png", img)
    assert np.array_equal(read_image(p), img)
    got, fps = read_video(p)
    assert got.shape == (1, 48, 64, 3) and fps == 1.0 and np.array_equal(got[0], img)
    assert probe_video(p)["frames"] == 1
    with pytest.raises(ValueError, match="H, W, 3"):
        write_png(tmp_path / "g.png", img[..., 0])


def test_image_alpha_composited_on_white(tmp_path):
    from PIL import Image

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :] = (255, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    got = read_image(tmp_path / "a.png")
    assert (got[0, 0] == (255, 0, 0)).all() and (got[3, 3] == (255, 255, 255)).all()


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    grey = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (8, 64, 3) and (got == got[..., :1]).all()
    assert np.abs(got[..., 0].astype(int) - np.round(grey / 257)).max() == 0 and got.max() == 255 and got.min() == 0


def test_write_frames(tmp_path):
    v = clip()
    paths = write_frames(tmp_path / "frames", v, prefix="f")
    assert [p.name for p in paths] == [f"f_{i:04d}.png" for i in range(9)]
    assert np.array_equal(read_image(paths[5]), v[5])


def test_contact_sheet(tmp_path):
    v = clip()
    sheet = contact_sheet(v)  # 9 frames -> 3x3
    assert sheet.shape == (3 * 50 + 2, 3 * 66 + 2, 3) and sheet.dtype == np.uint8
    assert np.array_equal(sheet[2 + 50:2 + 50 + 48, 2 + 66:2 + 66 + 64], v[4])  # row 1, col 1
    assert contact_sheet(v, cols=4, pad=0).shape == (3 * 48, 4 * 64, 3)
    assert contact_sheet(v, cols=20, pad=0).shape == (48, 9 * 64, 3)
    p = save_contact_sheet(tmp_path / "s.png", v, cols=5)
    assert read_image(p).shape == (2 * 50 + 2, 5 * 66 + 2, 3)


def test_to_from_uint8_round_trip():
    v = clip()
    x = from_uint8(v)
    assert x.shape == (3, 9, 48, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(x), v)
    assert np.array_equal(to_uint8(x[None]), v)  # (1, C, T, H, W)
    assert np.array_equal(to_uint8(x.numpy()), v)
    y = to_uint8(torch.tensor([-3.0, -1.0, 0.0, 1.0, 5.0]).view(1, 5, 1, 1).expand(3, 5, 1, 1))
    assert y[:, 0, 0, 0].tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(ValueError, match="shape"):
        to_uint8(torch.zeros(2, 3, 9, 4, 4))


def test_missing_file(tmp_path):
    p = tmp_path / "nope.mp4"
    for fn in (read_video, read_image, probe_video):
        with pytest.raises(FileNotFoundError, match="nope.mp4"):
            fn(p)


@pytest.mark.parametrize("name", ["junk.mp4", "junk.png", "junk.gif", "junk.txt"])
def test_garbage_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(os.urandom(2048))
    with pytest.raises(ValueError, match=name.replace(".", r"\.") + r".*allowed: videos"):
        read_video(p)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        probe_video(p)


def test_same_frames_same_file(tmp_path):
    """The same frames give the same mp4, byte for byte: a seed reproduces the file, not only
    the frames (a 64x64 clip of 8x8 blocks came out three different ways in six runs when
    the encoder converted to yuv420p itself)."""
    rng = np.random.default_rng(0)
    v = rng.integers(0, 256, (17, 8, 8, 3), dtype=np.uint8).repeat(8, 1).repeat(8, 2)
    files = {(write_video(tmp_path / f"v{i}.mp4", v, 8)).read_bytes() for i in range(8)}
    assert len(files) == 1
