"""Latent and text caches. Training the DiT never touches pixels: each video of
a dataset folder (DIR/metadata.jsonl) is encoded once by the VAE (posterior
mean, normalised) and each caption once by the text encoder, into safetensors
shards under a cache folder keyed by the VAE and text encoder, so a changed
model never reuses stale latents. Building resumes shard by shard."""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file
from tqdm import tqdm

from tenku.data.videos import BadVideo, ClipPolicy, load_clips
from tenku.io import from_uint8
from tenku.text.encoder import MAX_TOKENS

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


def cache_key(vae_folder: str | Path, text_encoder: str, max_tokens: int = MAX_TOKENS) -> str:
    """A short hash of what decides the cached latents and text states: the VAE's encoder
    weights and latent statistics, the text encoder's name and the caption tokens kept. A VAE
    whose decoder alone was fine-tuned (``freeze_encoder``) keeps its key, so its cache stays
    valid; so does a cache of the default token count (the key is what it was before it)."""
    import yaml

    folder = Path(vae_folder)
    if (folder / "vae" / "config.json").is_file():  # a Wan pipeline folder: its autoencoder
        folder = folder / "vae"
    wan = (folder / "diffusion_pytorch_model.safetensors").is_file()  # a diffusers autoencoder (Wan)
    h = hashlib.sha256()
    with safe_open(str(folder / ("diffusion_pytorch_model.safetensors" if wan else "model.safetensors")), "pt") as f:
        for name in sorted(k for k in f.keys() if k.startswith(("encoder.", "quant_conv.") if wan else "encoder.")):
            h.update(name.encode())
            h.update(f.get_tensor(name).float().numpy().tobytes())
    if wan:
        conf = json.loads((folder / "config.json").read_text())
        h.update(json.dumps([conf.get("latents_mean"), conf.get("latents_std")]).encode())
    else:
        conf = yaml.safe_load((folder / "config.yaml").read_text())
        h.update(json.dumps([conf.get("latent_mean"), conf.get("latent_std")]).encode())
    h.update(text_encoder.encode())
    if max_tokens != MAX_TOKENS:
        h.update(f"max_tokens={max_tokens}".encode())
    return h.hexdigest()[:12]


@torch.no_grad()
def build_cache(folder: str | Path, vae: Any, text: Any, cache_dir: str | Path, progress: bool = True,
                policy: ClipPolicy | None = None, rank: int = 0, world: int = 1) -> Path:
    """Encode every video and caption of ``folder`` into ``cache_dir`` (skips shards already there).

    Videos are cut into clips by ``policy`` (default: the whole video, see ``tenku.data.videos``).
    A video that cannot be used is left out and listed with its reason in the shard's
    metadata and in ``cache_dir/skipped.jsonl``; it never stops the build. With ``world`` > 1
    each rank encodes every ``world``-th shard (call it on every rank, then wait for all
    before reading; ``finish_cache`` writes the summary)."""
    policy = policy or ClipPolicy()
    recs = read_records(folder)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    mine = [s for k, s in enumerate(range(0, len(recs), SHARD)) if k % world == rank]
    bar = tqdm(total=sum(len(recs[s : s + SHARD]) for s in mine), desc=f"cache {Path(folder).name}", unit="video",
               disable=not progress)
    for s in mine:
        path = cache / f"shard-{s // SHARD:05d}.safetensors"
        chunk = recs[s : s + SHARD]
        if path.exists():
            bar.update(len(chunk))
            continue
        tensors: dict[str, torch.Tensor] = {}
        skipped: list[dict[str, str]] = []
        for j, r in enumerate(chunk):
            try:
                clips = load_clips(Path(folder) / r["file"], policy, vae.cfg.time_down, vae.cfg.space_down)
            except BadVideo as e:
                skipped.append({"file": r["file"], "reason": str(e)})
                bar.update()
                continue
            tensors.update(encode_items([(f"{s + j}" if c == 0 else f"{s + j}-{c}", frames) for c, frames in enumerate(clips)],
                                        [r["caption"], r.get("short_caption") or r["caption"]], vae, text))
            bar.update()
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata={"skipped": json.dumps(skipped)})
        tmp.replace(path)
    bar.close()
    if world == 1:
        finish_cache(folder, cache, len(recs), text)
    return cache


@torch.no_grad()
def encode_items(clips: list[tuple[str, np.ndarray]], texts: list[str], vae: Any, text: Any,
                 batch: int = 1) -> dict[str, torch.Tensor]:
    """Cache tensors of clips that share captions: ``NAME.latent`` per clip (uint8 (T, H, W, 3)
    frames; on a GPU, pass a ``batch`` > 1 to encode clips of one shape together) and ``NAME.caption`` /
    ``NAME.short`` from ``texts = [detailed, short]``, all bf16 on the CPU. With several caption
    pairs (``texts`` of length 2k), clip i takes pair i."""
    device = next(vae.parameters()).device
    states, mask = text.encode(texts)
    out: dict[str, torch.Tensor] = {}
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, (_, frames) in enumerate(clips):
        by_shape[frames.shape].append(i)
    for group in by_shape.values():
        for g in range(0, len(group), batch):
            part = group[g : g + batch]
            x = torch.stack([from_uint8(np.ascontiguousarray(clips[i][1]), device) for i in part])
            # bf16 autocast halves CPU encode time; the latents are stored in bf16 anyway
            with torch.autocast(device.type, torch.bfloat16):
                z = vae.encode(x)
            for i, zi in zip(part, z):
                out[f"{clips[i][0]}.latent"] = zi.to(torch.bfloat16).cpu().contiguous()
    for i, (name, _) in enumerate(clips):
        k = 2 * i if len(texts) > 2 else 0
        for key, row in (("caption", k), ("short", k + 1)):
            out[f"{name}.{key}"] = states[row, : int(mask[row].sum())].to(torch.bfloat16).cpu().contiguous()
    return out


def finish_cache(folder: str | Path, cache: Path, videos: int, text: Any = None) -> list[dict[str, str]]:
    """After every shard is written: the empty-prompt states, ``skipped.jsonl`` and ``done.json``.
    Returns the skipped videos (file, reason)."""
    skipped: list[dict[str, str]] = []
    for shard in sorted(cache.glob("shard-*.safetensors")):
        with safe_open(str(shard), "pt") as f:
            skipped += json.loads((f.metadata() or {}).get("skipped", "[]"))
    (cache / "skipped.jsonl").write_text("".join(json.dumps(r) + "\n" for r in skipped))
    if text is not None and not (cache / "empty.safetensors").exists():
        states, mask = text.encode([""])
        save_file({"empty": states[0, : max(1, int(mask[0].sum()))].float().contiguous()}, str(cache / "empty.safetensors"))
    done = {"videos": videos, "skipped": len(skipped), "folder": str(folder), "labels": label_names(folder)}
    (cache / "done.json").write_text(json.dumps(done))
    return skipped


def label_names(folder: str | Path) -> dict[str, list[str]]:
    """The label vocabularies a data folder's ground truth is written in, by kind: a world
    render's object shapes (``{"shapes": [...]}``, class id = 1 + the index); {} for a folder of
    other videos. The cache records them when it is made (``done.json``), so training reads
    labels from its data, not from the simulator's tables."""
    manifest = Path(folder) / "dataset.json"
    try:
        world = json.loads(manifest.read_text()).get("format") == "tenku-world"
    except (OSError, ValueError, AttributeError):
        world = False
    if not world:
        return {}
    from tenku.world.spec import SHAPES  # the world's schema, read here once for the cache

    return {"shapes": list(SHAPES)}


def cache_labels(cache: str | Path, folder: str | Path) -> dict[str, list[str]]:
    """The label vocabularies recorded in a complete cache of ``folder`` (a cache made before they
    were recorded: those of the folder as it is)."""
    done = json.loads((Path(cache) / "done.json").read_text())
    return done["labels"] if "labels" in done else label_names(folder)


def cache_complete(folder: str | Path, cache: str | Path) -> bool:
    """True if ``cache`` holds every shard of ``folder`` and its summary (nothing left to encode)."""
    cache = Path(cache)
    if not (cache / "done.json").is_file() or not (cache / "empty.safetensors").is_file():
        return False
    n = len(read_records(folder))
    return all((cache / f"shard-{k:05d}.safetensors").exists() for k in range(math.ceil(n / SHARD)))


def empty_states(cache: str | Path) -> torch.Tensor:
    """The empty prompt's text states (L, D) stored by ``finish_cache``."""
    return load_file(str(Path(cache) / "empty.safetensors"))["empty"]


class ShardReader(Sequence):
    """Tensors read from safetensors shards on demand: ``reader[i]`` is ``refs[i] = (shard, key)``
    (or a tuple of them). A bounded set of shards stays open (memory-mapped by safetensors)."""

    def __init__(self, refs: list[Any], open_max: int = 64):
        self.refs, self.open_max = refs, open_max
        self.handles: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self.refs)

    def _get(self, shard: str, key: str) -> torch.Tensor:
        f = self.handles.get(shard)
        if f is None:
            f = self.handles[shard] = safe_open(shard, "pt")
            if len(self.handles) > self.open_max:
                self.handles.popitem(last=False)
        else:
            self.handles.move_to_end(shard)
        return f.get_tensor(key)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        ref = self.refs[i]
        return tuple(self._get(*r) for r in ref) if isinstance(ref[0], tuple) else self._get(*ref)


class LatentSet:
    """All cached latents and caption states of one or more caches, bucketed by shape. Held in
    memory when the shards total at most ``preload_gb``; else read from the shards on demand
    (``latents[i]`` and ``captions[i]`` work the same either way), so a cache far larger than
    memory trains, each rank reading only the samples it uses."""

    def __init__(self, caches: list[Path], preload_gb: float = 16.0):
        shards = [s for cache in caches for s in sorted(Path(cache).glob("shard-*.safetensors"))]
        self.preloaded = sum(s.stat().st_size for s in shards) <= preload_gb * 2**30
        self.skipped: list[dict[str, str]] = []  # videos left out by the cache builder, with the reason
        self._lat_refs: list[tuple[str, str]] = []
        self._cap_refs: list[tuple[tuple[str, str], tuple[str, str]]] = []
        self.latents: Sequence[torch.Tensor] = [] if self.preloaded else ShardReader(self._lat_refs)
        self.captions: Sequence[tuple[torch.Tensor, torch.Tensor]] = [] if self.preloaded else ShardReader(self._cap_refs)
        self.shapes: list[tuple[int, ...]] = []  # (C, T', H', W') of each latent, without reading it
        self.names: list[str] = []  # "7": record 7's first clip, "7-2" its third
        self.sources: list[str] = []  # the cache folder each clip came from
        self.buckets: dict[tuple[int, ...], list[int]] = {}
        self._add(shards)
        if not self._lat_refs:
            bad = f"; {len(self.skipped)} unusable videos, e.g. {self.skipped[0]['file']}: {self.skipped[0]['reason']}" if self.skipped else ""
            raise ValueError(f"no usable videos: no cached latents in {', '.join(map(str, caches))}{bad}")

    def extend(self, caches: list[Path]) -> int:
        """Take up more complete caches (a dataset that grows while it trains); held in memory
        if this set is. Returns the number of clips added."""
        n = len(self)
        self._add([s for cache in caches for s in sorted(Path(cache).glob("shard-*.safetensors"))])
        return len(self) - n

    def _add(self, shards: list[Path]) -> None:
        first = len(self._lat_refs)
        for shard in shards:
            with safe_open(str(shard), "pt") as f:
                self.skipped += json.loads((f.metadata() or {}).get("skipped", "[]"))
                names = {k.rsplit(".", 1)[0] for k in f.keys()}  # "7" (a video's first clip) or "7-2" (its third)
                for name in sorted(names, key=lambda n: tuple(int(x) for x in n.split("-"))):
                    self._lat_refs.append((str(shard), f"{name}.latent"))
                    self._cap_refs.append(((str(shard), f"{name}.caption"), (str(shard), f"{name}.short")))
                    self.shapes.append(tuple(f.get_slice(f"{name}.latent").get_shape()))
                    self.names.append(name)
                    self.sources.append(str(shard.parent))
        if self.preloaded:
            loaded = {str(s): load_file(str(s)) for s in shards}
            self.latents += [loaded[sh][k] for sh, k in self._lat_refs[first:]]  # type: ignore[operator]
            self.captions += [(loaded[a][ka], loaded[b][kb]) for (a, ka), (b, kb) in self._cap_refs[first:]]  # type: ignore[operator]
        for i in range(first, len(self.shapes)):
            self.buckets.setdefault(self.shapes[i], []).append(i)

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
