"""A transformer run that parks at a point a fault test names, so the test can SIGKILL it there:
``python fault_run.py ckpt:N key=value ...`` parks while writing the step-N checkpoint (weights
written, optimizer not yet), ``step:N`` after step N (between checkpoints), ``-`` never. The
hooks come from outside the product: a wrapped save function and the trainer's ``steer``."""

import os
import sys
import time
from pathlib import Path

import tenku.train.dit_run as dit_run
from tenku.train.dit import load_train_config, train


def main() -> None:
    where, args = sys.argv[1], sys.argv[2:]
    cfg = load_train_config(None, [*args, "resume=auto"])
    out = Path(cfg.out)

    def park() -> None:
        (out / ".held").write_text(f"{where}:{os.getpid()}")
        while True:
            time.sleep(1)

    kind, _, at = where.partition(":")
    if kind == "ckpt":
        real = dit_run.save_optimizer

        def held(opt, path):  # noqa: ANN001
            if Path(path).parent.name == f".tmp-step-{int(at):07d}":
                park()
            real(opt, path)

        dit_run.save_optimizer = held
    steer = (lambda step: park() if step == int(at) else None) if kind == "step" else None
    train(cfg, progress=False, steer=steer)


if __name__ == "__main__":
    main()
