"""Real video folders: mixed sizes, lengths and containers, some corrupt or truncated, cache
(`tenku cache`) and train without crashing; the bad files are reported; the clip policy cuts
clips as stated; caching resumes and splits over ranks."""

import json

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tenku.data.latents as latents
from tenku.cli import main
from tenku.data.latents import LatentSet, build_cache, finish_cache
from tenku.data.videos import BadVideo, ClipPolicy, clip_windows, load_clips, nearest_size
from tenku.io import write_video
from tenku.text import load_text_encoder
from tenku.train.dit import load_train_config, train
from tenku.vae.model import VAE


def frames(n, h, w, seed=0):
    """A bright square moving over a dark background (uint8, n x h x w x 3)."""
    out = np.full((n, h, w, 3), 30, np.uint8)
    for t in range(n):
        y, x = (seed * 7 + t) % max(1, h - 8), (seed * 5 + 2 * t) % max(1, w - 8)
        out[t, y : y + 8, x : x + 8] = (200, 80 + seed * 20, 60)
    return out


def write_webm(path, video, fps):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libvpx-vp9", rate=int(fps))
        s.width, s.height, s.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        for f in video:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode(None))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "videos").mkdir()
    good = {
        "wide.mp4": (frames(13, 48, 80, 1), 8.0),
        "tall.mov": (frames(9, 64, 48, 2), 8.0),
        "long.mp4": (frames(40, 64, 64, 3), 8.0),
        "fast.mp4": (frames(33, 40, 40, 5), 16.0),
    }
    for name, (v, fps) in good.items():
        write_video(root / "videos" / name, v, fps)
    write_webm(root / "videos" / "square.webm", frames(17, 64, 64, 4), 8.0)
    (root / "videos" / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    whole = (root / "videos" / "long.mp4").read_bytes()
    (root / "videos" / "truncated.mp4").write_bytes(whole[: len(whole) * 4 // 5])  # moov first (faststart): 40 frames declared, 18 decode
    write_video(root / "videos" / "speck.mp4", frames(9, 4, 4), 8.0)  # smaller than the VAE's downsampling
    names = [*good, "square.webm", "corrupt.mp4", "truncated.mp4", "missing.mp4", "speck.mp4"]
    recs = [{"file": f"videos/{n}", "caption": f"a square moves in {n}", "short_caption": "a square"} for n in names]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


BAD = {"videos/corrupt.mp4", "videos/truncated.mp4", "videos/missing.mp4", "videos/speck.mp4"}


def test_clip_policy_windows_and_buckets():
    p = ClipPolicy(frames=9, clips_per_video=3)
    assert clip_windows(40, p, 4) == [(0, 9), (16, 9), (31, 9)]  # evenly spaced, first to last, no overlap
    assert clip_windows(13, p, 4) == [(0, 9)]  # room for one only
    assert clip_windows(7, p, 4) == [(0, 5)]  # shorter than a clip: its longest 1 + 4k prefix
    assert clip_windows(7, ClipPolicy(frames=9, min_frames=9), 4) == []
    assert clip_windows(12, ClipPolicy(), 4) == [(0, 9)]  # default: the whole video
    assert nearest_size(48, 80, [[32, 32], [32, 48], [48, 32]]) == (32, 48)
    assert nearest_size(64, 48, [[32, 32], [32, 48], [48, 32]]) == (48, 32)
    with pytest.raises(ValueError, match="1 \\+ 4"):
        ClipPolicy(frames=8).validate(4, 8)


def test_load_clips_by_policy_and_bad_files(mixed):
    p = ClipPolicy(frames=9, fps=8.0, sizes=[[32, 32], [32, 48], [48, 32]], clips_per_video=2)
    assert [c.shape for c in load_clips(mixed / "videos/long.mp4", p, 4, 8)] == [(9, 32, 32, 3)] * 2
    assert [c.shape for c in load_clips(mixed / "videos/wide.mp4", p, 4, 8)] == [(9, 32, 48, 3)]
    assert [c.shape for c in load_clips(mixed / "videos/square.webm", p, 4, 8)] == [(9, 32, 32, 3)]
    fast = load_clips(mixed / "videos/fast.mp4", p, 4, 8)  # 16 fps -> every 2nd frame: 17 frames, room for one clip of 9
    assert [c.shape for c in fast] == [(9, 32, 32, 3)]
    assert np.array_equal(fast[0][1], load_clips(mixed / "videos/fast.mp4", ClipPolicy(sizes=[[32, 32]]), 4, 8)[0][2])
    native = load_clips(mixed / "videos/long.mp4", ClipPolicy(), 4, 8)  # default: whole video, top-left crop
    assert [c.shape for c in native] == [(37, 64, 64, 3)]
    for bad, why in [("corrupt.mp4", "unreadable"), ("truncated.mp4", "truncated: 18 of 40"), ("speck.mp4", "too small")]:
        with pytest.raises(BadVideo, match=why):
            load_clips(mixed / "videos" / bad, p, 4, 8)


def test_cache_command_skips_and_reports_bad_files_then_trains(mixed, tiny_vae, tmp_path, capsys):
    cache = tmp_path / "cache"
    sizes = ["--size", "32x32", "--size", "48x32", "--size", "32x48"]
    args = ["cache", str(mixed), "--vae", str(tiny_vae), "--out", str(cache), "--frames", "9", "--fps", "8",
            "--clips-per-video", "2", "--quiet", *sizes]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "5 of 9 videos cached" in said
    for bad in BAD:
        assert f"skipped {bad}" in said
    (folder,) = [p for p in cache.iterdir()][0].iterdir()
    listed = [json.loads(x) for x in (folder / "skipped.jsonl").read_text().splitlines()]
    assert {r["file"] for r in listed} == BAD and all(r["reason"] for r in listed)
    shard = folder / "shard-00000.safetensors"
    stamp = shard.stat().st_mtime_ns
    assert main(args) == 0 and shard.stat().st_mtime_ns == stamp  # resumable: finished shards are kept
    data = LatentSet([folder])
    # long.mp4 gives 2 clips, the others 1; three shape buckets (square, wide, tall)
    assert len(data) == 6 and len(data.buckets) == 3 and {len(v) for v in data.buckets.values()} == {4, 1}
    lazy = LatentSet([folder], preload_gb=0)  # a cache bigger than memory: read from the shards on demand
    assert not lazy.preloaded and data.preloaded and lazy.buckets == data.buckets
    assert lazy.names == data.names and len(data.names) == 6
    assert sum("-" in n for n in data.names) == 1  # long.mp4's second clip is "<its record>-1"
    for i in range(len(data)):
        assert torch.equal(lazy.latents[i], data.latents[i])
        assert all(torch.equal(a, b) for a, b in zip(lazy.captions[i], data.captions[i]))

    # training reads the same cache (same VAE, encoder and clip policy): no pixels decoded, no crash
    over = [f"data=[{mixed}]", f"vae={tiny_vae}", f"cache={cache}", "size=tiny", "batch_size=2", "steps=4", f"out={tmp_path / 'run'}",
            "sample_every=0", "log_every=1", "threads=1", "peak_tflops=1", "clips.frames=9", "clips.fps=8", "clips.clips_per_video=2",
            "clips.sizes=[[32,32],[48,32],[32,48]]", "preload_gb=0"]
    last = train(load_train_config(None, over), progress=False)
    assert last["step"] == 4 and np.isfinite(last["loss"])
    assert "4 videos skipped" in capsys.readouterr().out


def test_cache_splits_over_ranks_like_one_process(tiny_world, tiny_vae, tmp_path, monkeypatch):
    monkeypatch.setattr(latents, "SHARD", 3)  # 8 videos -> 3 shards
    vae, text = VAE.load(tiny_vae), load_text_encoder("minilm")
    one = build_cache(tiny_world, vae, text, tmp_path / "one", progress=False)
    for rank in (0, 1):  # what two ranks do, one after the other
        build_cache(tiny_world, vae, text, tmp_path / "two", progress=False, rank=rank, world=2)
    assert sorted(p.name for p in (tmp_path / "two").glob("shard-*")) == ["shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"]
    finish_cache(tiny_world, tmp_path / "two", 8, text)
    for shard in one.glob("shard-*.safetensors"):
        a, b = load_file(str(shard)), load_file(str(tmp_path / "two" / shard.name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_no_usable_videos_is_a_clear_error(tmp_path, tiny_vae):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bad.mp4").write_bytes(b"not a video")
    (tmp_path / "d" / "metadata.jsonl").write_text(json.dumps({"file": "bad.mp4", "caption": "x"}) + "\n")
    over = [f"data=[{tmp_path / 'd'}]", f"vae={tiny_vae}", "size=tiny", "batch_size=2", "steps=1", f"out={tmp_path / 'run'}", "sample_every=0"]
    with pytest.raises(ValueError, match="no usable videos.*bad.mp4"):
        train(load_train_config(None, over), progress=False)


def test_vae_trains_on_the_mixed_folder_and_skips_bad_files(mixed, tmp_path, capsys):
    from tenku.train.vae import load_train_config as vae_config, train as train_vae

    over = ["preset=tiny", "model.latent_channels=4", f"data.train=[{mixed}]", f"data.val={mixed}", "data.val_count=2",
            "data.crop=32", "data.max_frames=9", "data.batch_frames=18", "stats_clips=8", "steps=4", "warmup=1",
            "log_every=1", "sample_every=100", "eval_every=4", "ckpt_every=100", "threads=1", "data.image_prob=0",
            f"out={tmp_path / 'vae'}"]
    last = train_vae(vae_config(None, over), progress=False)
    said = capsys.readouterr().out
    assert last["step"] == 4 and np.isfinite(last["loss"]) and np.isfinite(last["val_psnr"])
    assert "skipping" in said and "corrupt.mp4" in said and "missing.mp4" in said
    assert "truncated" in said and "18 of 40" in said  # used for the frames that decode, and said so


def test_encode_items_batched_equals_one_at_a_time(tiny_vae):
    from tenku.data.latents import encode_items

    vae, text = VAE.load(tiny_vae), load_text_encoder("minilm")
    clips = [("0", frames(9, 32, 32, 0)), ("1", frames(9, 32, 48, 1)), ("2", frames(9, 32, 32, 2))]
    texts = ["a red ball", "ball", "a blue cube", "cube", "a green star", "star"]  # one caption pair per clip
    one = encode_items(clips, texts, vae, text)
    many = encode_items(clips, texts, vae, text, batch=4)
    assert one.keys() == many.keys() == {f"{i}.{k}" for i in "012" for k in ("latent", "caption", "short")}
    assert many["1.latent"].shape[-2:] == (4, 6) and many["0.latent"].dtype == torch.bfloat16
    for k in one:
        torch.testing.assert_close(one[k].float(), many[k].float(), atol=0.05, rtol=0.05)
    assert not torch.equal(many["0.caption"], many["2.caption"])  # each clip its own caption
