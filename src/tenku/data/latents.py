"""Latent and text caches. Training the DiT never touches pixels: each video of
a dataset folder (DIR/metadata.jsonl) is encoded once by the VAE (posterior
mean, normalised) and each caption once by the text encoder, into safetensors
shards under a cache folder keyed by the VAE and text encoder, so a changed
model never reuses stale latents. Building resumes shard by shard."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from tenku.io import from_uint8, read_video

SHARD = 64  # videos per cache shard


def read_records(folder: str | Path) -> list[dict[str, Any]]:
    """The records of a dataset folder's metadata.jsonl (they need 'file' and 'caption')."""
    path = Path(folder) / "metadata.jsonl"
    if not path.is_file():
        raise ValueError(f"{folder}: no metadata.jsonl (make one with `tenku world render` or `tenku caption`)")
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in recs:
        if "file" not in r or not r.get("caption"):
            raise ValueError(f"{path}: every record needs 'file' and 'caption' (got keys {sorted(r)})")
    return recs


def cache_key(vae_folder: str | Path, text_encoder: str) -> str:
    """A short hash of the VAE weights file and the text encoder name."""
    h = hashlib.sha256()
    with open(Path(vae_folder) / "model.safetensors", "rb") as f:
        h.update(f.read(1 << 20))
    h.update(text_encoder.encode())
    return h.hexdigest()[:12]


@torch.no_grad()
def build_cache(folder: str | Path, vae: Any, text: Any, cache_dir: str | Path, progress: bool = True) -> Path:
    """Encode every video and caption of ``folder`` into ``cache_dir`` (skips shards already there)."""
    recs = read_records(folder)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    shards = range(0, len(recs), SHARD)
    bar = tqdm(total=len(recs), desc=f"cache {Path(folder).name}", unit="video", disable=not progress)
    for s in shards:
        path = cache / f"shard-{s // SHARD:05d}.safetensors"
        chunk = recs[s : s + SHARD]
        if path.exists():
            bar.update(len(chunk))
            continue
        tensors: dict[str, torch.Tensor] = {}
        for j, r in enumerate(chunk):
            frames, _ = read_video(Path(folder) / r["file"])
            t = 1 + (len(frames) - 1) // vae.cfg.time_down * vae.cfg.time_down
            h = frames.shape[1] // vae.cfg.space_down * vae.cfg.space_down
            w = frames.shape[2] // vae.cfg.space_down * vae.cfg.space_down
            x = from_uint8(np.ascontiguousarray(frames[:t, :h, :w]))[None]
            # bf16 autocast halves CPU encode time; the latents are stored in bf16 anyway
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
                z = vae.encode(x)[0]
            tensors[f"{s + j}.latent"] = z.to(torch.bfloat16).contiguous()
            texts = [r["caption"], r.get("short_caption") or r["caption"]]
            states, mask = text.encode(texts)
            for k, name in enumerate(("caption", "short")):
                tensors[f"{s + j}.{name}"] = states[k, : int(mask[k].sum())].to(torch.bfloat16).contiguous()
            bar.update()
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(path)
    bar.close()
    (cache / "done.json").write_text(json.dumps({"videos": len(recs), "folder": str(folder)}))
    return cache


class LatentSet:
    """All cached latents and caption states of one or more caches, in memory, bucketed by shape."""

    def __init__(self, caches: list[Path]):
        self.latents: list[torch.Tensor] = []
        self.captions: list[tuple[torch.Tensor, torch.Tensor]] = []
        for cache in caches:
            for shard in sorted(Path(cache).glob("shard-*.safetensors")):
                t = load_file(str(shard))
                for i in sorted({int(k.split(".")[0]) for k in t}):
                    self.latents.append(t[f"{i}.latent"])
                    self.captions.append((t[f"{i}.caption"], t[f"{i}.short"]))
        if not self.latents:
            raise ValueError(f"no cached latents in {', '.join(map(str, caches))}")
        buckets: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, z in enumerate(self.latents):
            buckets[tuple(z.shape)].append(i)
        self.buckets = dict(buckets)

    def __len__(self) -> int:
        return len(self.latents)

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, list[int]]:
        """A batch of one shape: latents (B, C, T', H', W') float32 and their indices.
        The bucket is drawn in proportion to its size."""
        keys = list(self.buckets)
        p = np.array([len(self.buckets[k]) for k in keys], dtype=np.float64)
        key = keys[int(rng.choice(len(keys), p=p / p.sum()))]
        idx = [int(i) for i in rng.choice(self.buckets[key], size=size)]
        return torch.stack([self.latents[i] for i in idx]).float(), idx
