"""A pure Euler sampler over an explicit list of sigmas (edm2-style), with
per-frame conditioning: condition frames stay clean (sigma 0, or a small
``cond_sigma`` of noise augmentation) and are never updated."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tenku.flow.path import add_noise

# model_fn(x (B,C,T,H,W), sigma (B,T')) -> v (B,C,T,H,W)
VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class GuidedModel:
    """Classifier-free guidance: v = v_u + g (v_c - v_u), both halves in one batch.

    ``fn(x, sigma, context, mask)`` is the network; ``cond``/``uncond`` are
    (states, mask) pairs of the prompt and the empty prompt. g = 1 calls the
    conditional branch only. With a ``guide`` (a smaller, less trained model of the
    same latents and captions) and ``autoguidance`` a > 0, the step adds
    a (v_c - v_guide,c): away from the errors the weaker model makes more of
    (autoguidance, Karras et al. 2024), one more call of the (small) guide.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], cond: tuple[torch.Tensor, torch.Tensor],
                 uncond: tuple[torch.Tensor, torch.Tensor], guidance: float,
                 guide: Callable[..., torch.Tensor] | None = None, autoguidance: float = 0.0):
        self.fn, self.cond, self.uncond, self.guidance = fn, cond, uncond, guidance
        self.guide, self.autoguidance = guide, autoguidance

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.guidance == 1.0:
            vc = v = self.fn(x, sigma, *self.cond)
        else:
            ctx = _cat_pad(self.cond[0], self.uncond[0])
            msk = _cat_pad(self.cond[1], self.uncond[1])
            vc, vu = self.fn(torch.cat([x, x]), torch.cat([sigma, sigma]), ctx, msk).chunk(2)
            v = vu + self.guidance * (vc - vu)
        if self.guide is not None and self.autoguidance:
            v = v + self.autoguidance * (vc - self.guide(x, sigma, *self.cond))
        return v


def _cat_pad(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Concatenate along batch, zero-padding the token axis (dim 1) to the longer one."""
    n = max(a.shape[1], b.shape[1])

    def pad(t: torch.Tensor) -> torch.Tensor:
        if t.shape[1] == n:
            return t
        shape = list(t.shape)
        shape[1] = n - t.shape[1]
        return torch.cat([t, t.new_zeros(shape)], dim=1)

    return torch.cat([pad(a), pad(b)])


SAMPLERS = ("euler", "dpm++2m")


@torch.no_grad()
def sample(
    model: VelocityFn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    cond: torch.Tensor | None = None,
    cond_mask: torch.Tensor | None = None,
    cond_sigma: float = 0.0,
    x_start: torch.Tensor | None = None,
    callback: Callable[[int, int], None] | None = None,
    method: str = "euler",
) -> torch.Tensor:
    """Integrate from ``sigmas[0]`` to ``sigmas[-1]`` (= 0), one model call per step.

    noise: (B, C, T', H, W) standard normal. ``x_start``: a clean latent to start from at
    sigma = sigmas[0] (SDEdit); otherwise sampling starts from ``sigmas[0] * noise`` (pure
    noise when sigmas[0] = 1). ``cond`` (same shape) and ``cond_mask`` (B, T') bool: frames
    whose latents are given. Those frames are set to ``add_noise(cond, noise, cond_sigma)``,
    their sigma is ``cond_sigma`` throughout, and they are never updated.

    ``method``: ``euler`` (x += (sigma_next - sigma) v) or ``dpm++2m``, DPM-Solver++(2M)
    (Lu et al. 2022) on the flow's x0 prediction ``x - sigma v``, with alpha = 1 - sigma: a
    second-order multistep method at the cost of Euler. Its first step (from sigma = 1) and
    its last (to sigma = 0) are first order, and there both methods agree exactly.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; allowed: {', '.join(SAMPLERS)}")
    b, _, t = noise.shape[:3]
    s0 = float(sigmas[0])
    start = x_start if x_start is not None else torch.zeros_like(noise)
    x = add_noise(start, noise, torch.full((b, t), s0, dtype=noise.dtype, device=noise.device))
    keep = None
    if cond_mask is not None and cond is not None:
        keep = cond_mask[:, None, :, None, None]
        clean = add_noise(cond, noise, torch.full((b, t), cond_sigma, dtype=noise.dtype, device=noise.device))
        x = torch.where(keep, clean, x)
    steps = len(sigmas) - 1
    prev: tuple[torch.Tensor, float] | None = None  # DPM-Solver++: the last x0 and step size h
    for i in range(steps):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        sig = torch.full((b, t), s, dtype=noise.dtype, device=noise.device)
        if cond_mask is not None:
            sig = torch.where(cond_mask, torch.full_like(sig, cond_sigma), sig)
        v = model(x, sig).to(x.dtype)
        if method == "euler" or s_next == 0 or s >= 1:
            x_next = x + (s_next - s) * v  # first order; DPM-Solver++(1) is this same step here
            prev = (x - s * v, math.inf)  # from sigma = 1 the log-SNR step is infinite
        else:
            x0 = x - s * v
            h = _lam(s_next) - _lam(s)
            d = x0 if prev is None else x0 + (x0 - prev[0]) * h / (2 * prev[1])
            x_next = (s_next / s) * x - (1 - s_next) * math.expm1(-h) * d
            prev = (x0, h)
        x = torch.where(keep, x, x_next) if keep is not None else x_next
        if callback is not None:
            callback(i + 1, steps)
    if keep is not None:  # hand back the exact clean condition frames
        x = torch.where(keep, cond, x)
    return x


def _lam(sigma: float) -> float:
    """log(alpha / sigma), alpha = 1 - sigma: the half log-SNR DPM-Solver steps in."""
    return math.log((1 - sigma) / sigma)


def euler_sample(model: VelocityFn, noise: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor | None = None,
                 cond_mask: torch.Tensor | None = None, cond_sigma: float = 0.0, x_start: torch.Tensor | None = None,
                 callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``sample`` with the Euler method."""
    return sample(model, noise, sigmas, cond, cond_mask, cond_sigma, x_start, callback, "euler")
