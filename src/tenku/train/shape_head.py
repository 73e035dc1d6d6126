"""The shape head (``tenku train dit ... shape_head=W``, off by default; docs/training.md).

A linear head reads the transformer's residual stream after block ``shape_head_block`` (0: the
middle) and names, for every latent cell of the frames being generated, the shape of the world
object whose box covers it (``tenku.data.objects``: 0 for the background, 1 + the index in
the shape names the data's cache records; cells several boxes share are left out). W times its cross-entropy
joins the flow loss, so the transformer is asked to know which shape goes where even at the
noise levels where only the caption can say it (session 17: a probe of the bundle's block 4
reads the shape there 30% of the time, 75% after 800 image steps with W = 0.5).

The head is not part of the model: a forward hook on the block keeps its output for the head
(the network holds no training state), and the head is trained beside it with its own AdamW (the run's
learning rate), its gradients averaged over the ranks by hand (it is not under DDP or FSDP),
saved in each checkpoint (``shape_head.safetensors`` and its optimizer) and never shipped.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from tenku.data.objects import SHARED
from tenku.dit.model import DiT
from tenku.dit.patches import unpatchify
from tenku.train.checkpoint import load_optimizer, save_optimizer

WEIGHTS, OPTIM = "shape_head.safetensors", "shape_head_optim.safetensors"
HIGH = 0.8  # log.jsonl's shape_acc_hi: frames at this noise level or more (the bundle's probe: 0.30 there)


class ShapeHead:
    def __init__(self, model: DiT, weight: float, block: int, lr: float, device: torch.device, shapes: int):
        """``shapes``: the number of shape names (classes 1..shapes; 0 is the background)."""
        depth = len(model.blocks)
        block = block or depth // 2
        if not 1 <= block <= depth:
            raise ValueError(f"shape_head_block must lie in 1..{depth} (0: the middle, {depth // 2}); got {block}")
        self.model, self.weight, self.classes, self.block = model, weight, 1 + shapes, block
        self.hidden: torch.Tensor | None = None  # the block's output in the last forward (B, L, D)
        self.hook = model.blocks[block - 1].register_forward_hook(self._keep)
        self.head = nn.Linear(model.cfg.dim, self.classes * math.prod(model.cfg.patch)).to(device)
        nn.init.zeros_(self.head.weight)  # no draw (every rank starts alike) and no gradient into the model at first:
        nn.init.zeros_(self.head.bias)  # the fine-tuned transformer is asked gently, as the head learns to read it
        self.opt = torch.optim.AdamW(self.head.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
        self.stats = torch.zeros(6, dtype=torch.float64)  # cross-entropy sum, frames; right, object cells (all, noise >= HIGH)

    def _keep(self, module: nn.Module, args: object, output: torch.Tensor) -> None:
        self.hidden = output

    def loss_sum(self, labels: torch.Tensor, cond: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """W times the summed per-frame mean cross-entropy of the frames to generate (``cond``
        (B, T') False), from the stream the last forward left at the block; ``labels`` (B, T', H', W') long,
        ``sigma`` (B, T') the frames' noise levels (for the accuracy above HIGH)."""
        hidden, self.hidden = self.hidden, None  # taken, so no graph is kept past the step
        if hidden is None:
            raise RuntimeError("the shape head needs the model's forward first (nothing was kept at its block)")
        b, t, h, w = labels.shape
        pt, ph, pw = self.model.cfg.patch
        logits = unpatchify(self.head(hidden.float()), (t // pt, h // ph, w // pw), (pt, ph, pw), self.classes)
        valid = labels != SHARED
        ce = F.cross_entropy(logits, labels.clamp_min(0), reduction="none") * valid  # (B, T', H', W')
        per_frame = ce.sum(dim=(2, 3)) / valid.sum(dim=(2, 3)).clamp_min(1)
        gen = ~cond
        total = (per_frame * gen.float()).sum()
        with torch.no_grad():
            obj = (labels > 0) & gen[:, :, None, None]
            right = (logits[:, 1:].argmax(1) + 1 == labels) & obj
            hi = (sigma >= HIGH)[:, :, None, None]
            counts = [total.detach(), gen.sum(), right.sum(), obj.sum(), (right & hi).sum(), (obj & hi).sum()]
            self.stats += torch.stack([c.double() for c in counts]).cpu()  # one copy to the host, not six
        return self.weight * total

    def begin(self, lr: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad(set_to_none=True)

    def step(self, ranks: int) -> None:
        """Average the gradients over ``ranks`` processes (each rank's backward scaled its loss as
        DDP's mean expects) and update."""
        if ranks > 1:
            import torch.distributed as td

            for p in self.head.parameters():
                if p.grad is not None:
                    td.all_reduce(p.grad)
                    p.grad /= ranks
        self.opt.step()

    def logged(self) -> dict[str, float]:
        """The mean cross-entropy per generated frame and the share of object cells whose shape
        the head names right (on every frame, and on frames at noise HIGH or more, where the
        caption is nearly all that can tell it), since the last call (this rank's batches), then reset."""
        ce, frames, right, n, right_hi, n_hi = self.stats.tolist()
        self.stats.zero_()
        return {"shape_ce": ce / max(frames, 1.0), "shape_acc": right / max(n, 1.0), "shape_acc_hi": right_hi / max(n_hi, 1.0)}

    def save(self, folder: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(folder / WEIGHTS))
        save_optimizer(self.opt, folder / OPTIM)

    def load(self, folder: Path) -> bool:
        """Restore from a checkpoint folder; False (a fresh head) where it has none, e.g. a run
        that switched the head on when resumed."""
        if not (folder / WEIGHTS).is_file():
            return False
        self.head.load_state_dict(load_file(str(folder / WEIGHTS)))
        if (folder / OPTIM).is_file():
            load_optimizer(self.opt, folder / OPTIM)
        return True
