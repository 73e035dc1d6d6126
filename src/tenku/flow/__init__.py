"""Rectified flow, the one place the noise convention lives.

``x_sigma = (1 - sigma) * x0 + sigma * noise``; sigma in [0, 1], 1 is pure noise;
the model predicts ``v = noise - x0``; an Euler step is ``x += (sigma_next - sigma) * v``.
Sigma is per latent frame, shape (B, T'); a frame with sigma 0 is a clean condition.
"""

from tenku.flow.loss import flow_loss_sum
from tenku.flow.path import add_noise, noise_from_v, velocity, x0_from_v
from tenku.flow.sampler import SAMPLERS, GuidedModel, euler_sample, sample
from tenku.flow.schedule import logit_normal, resolution_shift, sampling_sigmas, shift_sigmas

__all__ = [
    "SAMPLERS",
    "GuidedModel",
    "add_noise",
    "euler_sample",
    "flow_loss_sum",
    "logit_normal",
    "noise_from_v",
    "resolution_shift",
    "sample",
    "sampling_sigmas",
    "shift_sigmas",
    "velocity",
    "x0_from_v",
]
