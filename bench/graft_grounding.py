"""Graft a frozen-base grounded run's grounding weights onto a pipeline folder (docs/layout.md):
the folder's own transformer tensors for everything else, so its free path stays bit-identical,
and the run's EMA ``grounding.*`` tensors; saved bf16 as the bundle is. How models/tenku-world
got its grounding (session 22, run ground-s21b at step 850, trained with layout.base_lr_mult=0):

    python bench/graft_grounding.py models/tenku-world RUN/checkpoints/step-N/ema OUT
"""
import shutil, sys
from dataclasses import replace
import torch
from tenku.dit.model import DiT, load_dit, save_dit
from tenku.pipeline import Pipeline

if len(sys.argv) != 4:
    sys.exit("usage: python bench/graft_grounding.py PIPELINE_FOLDER RUN_EMA_FOLDER OUT_FOLDER")
src, run_ema, out = sys.argv[1], sys.argv[2], sys.argv[3]
base, grounded = load_dit(f"{src}/transformer"), load_dit(run_ema)
dit = DiT(replace(base.cfg, grounding=grounded.cfg.grounding, grounding_dim=grounded.cfg.grounding_dim))
state = {**{k: v for k, v in grounded.state_dict().items() if k.startswith("grounding.")}, **base.state_dict()}
dit.load_state_dict(state, strict=True)
shutil.copytree(src, out, dirs_exist_ok=True)
save_dit(f"{out}/transformer", dit.eval(), dtype=torch.bfloat16)
print(sum(v.numel() for k, v in state.items() if k.startswith("grounding.")), "grounding parameters grafted")
