"""Every generation mode on one sampler: the chunk arithmetic (``plans``), the frame
operations at seams and on inputs (``frames``) and the runner that turns a request's plans
into sampling calls (``runner``). Sizes and frame counts are the request layer's
(``tenku.request.geometry``)."""

from tenku.modes.frames import as_frames, cover_resize, fade, fade_from, fade_into, ramp, resample_fps, resampled_length
from tenku.modes.plans import Chunk, end_latents, loop_split, plan_connect, plan_rollout, start_latents
from tenku.modes.runner import Runner, latent_of_frames

__all__ = ["Chunk", "Runner", "as_frames", "cover_resize", "end_latents", "fade", "fade_from", "fade_into",
           "latent_of_frames", "loop_split", "plan_connect", "plan_rollout", "ramp", "resample_fps", "resampled_length",
           "start_latents"]
