"""The VAE's streaming runtime: ``encode`` and ``decode`` cut time into chunks and carry a
cache (the last two frames entering each temporal conv), so memory does not grow with video
length and chunked equals whole; frames that are too large are cut into overlapping tiles
blended with linear ramps. ``VAE.encode``/``VAE.decode`` call these."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tenku.vae.model import CL, Cache

if TYPE_CHECKING:
    from tenku.vae.model import VAE


def _spans(n: int, first: int, step: int) -> list[tuple[int, int]]:
    """[0, first) then [first, first + step), ... clipped to n."""
    return [(0, min(first, n))] + [(a, min(a + step, n)) for a in range(first, n, step)]


def _tiles(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size`` with at least ``overlap``."""
    if size <= tile:
        return [0]
    n = math.ceil((size - overlap) / (tile - overlap))
    return sorted({round(i * (size - tile) / (n - 1)) for i in range(n)})


def _ramp(n: int, lo: int, hi: int, ramp: int) -> Tensor:
    """Blend weight along one axis: rises over ``ramp`` at a side that has a neighbour."""
    w = torch.ones(n)
    r = (torch.arange(ramp) + 0.5) / ramp
    if lo and ramp:
        w[:ramp] = r
    if hi and ramp:
        w[-ramp:] = torch.minimum(w[-ramp:], r.flip(0))
    return w



@torch.no_grad()
def encode(vae: VAE, x: Tensor, sample: bool = False, generator: torch.Generator | None = None,
           chunk: int = 2, tile: int | None = None, overlap: int = 64) -> Tensor:
    """Video ``(B, 3, T, H, W)`` in [-1, 1] -> normalised latent ``(B, C, T', H', W')``.

    Time is processed ``chunk`` latent frames at a time with a causal cache (peak memory
    does not depend on T). ``tile`` (pixels) cuts large frames into tiles overlapping by
    ``overlap`` pixels, blended linearly; None tiles at 256 only when a side exceeds 512.
    ``sample`` draws from the posterior instead of taking its mean."""
    vae._check_video(x)
    c = vae.cfg
    out = torch.empty(x.shape[0], 2 * c.latent_channels, *vae.latent_shape(*x.shape[2:])[1:], device=x.device)
    t = 0
    for y in _stream(vae.encoder, x, _spans(x.shape[2], 1, c.time_down * chunk), tile, overlap, 1 / c.space_down):
        out[:, :, t : t + y.shape[2]] = y
        t += y.shape[2]
    mean, logvar = out.chunk(2, 1)  # (B, C, T', H', W') each
    z = mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * torch.randn(mean.shape, generator=generator).to(mean.device) if sample else mean
    return (z - vae.latent_shift) / vae.latent_scale


@torch.no_grad()
def decode(vae: VAE, z: Tensor, chunk: int = 2, tile: int | None = None, overlap: int = 64) -> Tensor:
    """Normalised latent ``(B, C, T', H', W')`` -> video ``(B, 3, 1 + time_down (T'-1), H, W)``
    in [-1, 1] (not clamped). ``chunk``/``tile``/``overlap`` as in ``encode``."""
    out: Tensor | None = None
    t = 0
    for y in decode_chunks(vae, z, chunk, tile, overlap):
        if out is None:  # allocate once: no list of chunks plus a concatenated copy
            out = y.new_empty(*y.shape[:2], 1 + vae.cfg.time_down * (z.shape[2] - 1), *y.shape[3:])
        out[:, :, t : t + y.shape[2]] = y
        t += y.shape[2]
    return out  # type: ignore[return-value]


@torch.no_grad()
def decode_chunks(vae: VAE, z: Tensor, chunk: int = 2, tile: int | None = None, overlap: int = 64) -> Iterator[Tensor]:
    """Like ``decode``, but yields the video chunk by chunk (frame 0 alone, then
    ``time_down * chunk`` frames at a time), so a writer can stream a long video."""
    c = vae.cfg
    if z.ndim != 5 or z.shape[1] != c.latent_channels:
        raise ValueError(f"latent must be (B, {c.latent_channels}, T', H', W'); got {tuple(z.shape)}")
    z = z.float() * vae.latent_scale + vae.latent_shift
    spans = _spans(z.shape[2], 1, chunk)
    tile_lat = None if tile is None else max(1, tile // c.space_down)
    yield from _stream(vae.decoder, z, spans, tile_lat, overlap // c.space_down, c.space_down, 512 // c.space_down)


def _stream(net: Callable[[Tensor, Cache], Tensor], x: Tensor, spans: list[tuple[int, int]],
            tile: int | None, overlap: int, scale: float, auto_tile: int = 512) -> Iterator[Tensor]:
    """Run ``net`` over time spans (one cache per tile) and yield each span's blended output."""
    H, W = x.shape[-2:]
    if tile is None:
        tile = auto_tile // 2 if max(H, W) > auto_tile else max(H, W)
    q = max(1, int(round(1 / scale)))  # tile offsets must be whole latent pixels when encoding
    tile = max(q, tile // q * q)
    overlap = min(overlap, tile // 2) // q * q
    ys, xs = _tiles(H, tile, overlap), _tiles(W, tile, overlap)
    boxes = [(y0, min(y0 + tile, H), x0, min(x0 + tile, W)) for y0 in ys for x0 in xs]
    caches: list[Cache] = [{} for _ in boxes]
    ramp = int(overlap * scale)
    for a, b in spans:
        xc = x[:, :, a:b].contiguous(memory_format=CL)
        if len(boxes) == 1:
            yield net(xc, caches[0])
            continue
        out = wsum = None
        for (y0, y1, x0, x1), cache in zip(boxes, caches):
            y = net(xc[..., y0:y1, x0:x1].contiguous(memory_format=CL), cache)
            if out is None:
                out = y.new_zeros(*y.shape[:3], int(H * scale), int(W * scale))
                wsum = y.new_zeros(int(H * scale), int(W * scale))
            Y0, X0 = int(y0 * scale), int(x0 * scale)
            h, w = y.shape[-2:]
            wt = (_ramp(h, y0 > 0, y1 < H, ramp)[:, None] * _ramp(w, x0 > 0, x1 < W, ramp)[None, :]).to(y.device)
            out[..., Y0 : Y0 + h, X0 : X0 + w] += y * wt
            wsum[Y0 : Y0 + h, X0 : X0 + w] += wt  # type: ignore[index]
        yield out / wsum  # type: ignore[operator]

