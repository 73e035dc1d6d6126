from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tenku.config import ConfigError
from tenku.vae import VAE, load_vae, vae_config

from .conftest import random_vae


@pytest.fixture(scope="module")
def model() -> VAE:
    return random_vae()


@pytest.mark.parametrize("frames", [1, 5, 17, 33])
@pytest.mark.parametrize("hw", [(128, 224), (224, 128)])
def test_latent_shapes(model: VAE, frames: int, hw: tuple[int, int]) -> None:
    h, w = hw
    x = torch.rand(1, 3, frames, h, w) * 2 - 1
    z = model.encode(x)
    assert z.shape == (1, 4, 1 + (frames - 1) // 4, h // 8, w // 8) == (1, *model.latent_shape(frames, h, w))
    assert model.decode(z).shape == x.shape


@pytest.mark.parametrize("time_down,space_down", [(1, 4), (2, 8), (4, 16), (2, 16)])
def test_compression_options(time_down: int, space_down: int) -> None:
    m = VAE(vae_config("tiny", time_down=time_down, space_down=space_down, channels=[8, 16],
                       enc_blocks=[1] * (space_down.bit_length()), dec_blocks=[1] * (space_down.bit_length())))
    x = torch.zeros(1, 3, 1 + 2 * time_down, 32, 48)
    recon, mean, _ = m(x)
    assert mean.shape == (1, 4, 3, 32 // space_down, 48 // space_down)
    assert recon.shape == x.shape


def test_bad_inputs(model: VAE) -> None:
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        model.encode(torch.zeros(1, 3, 4, 64, 64))
    with pytest.raises(ValueError, match="multiples of 8"):
        model.encode(torch.zeros(1, 3, 5, 60, 64))
    with pytest.raises(ValueError, match="video must be"):
        model.encode(torch.zeros(3, 5, 64, 64))
    with pytest.raises(ValueError, match="latent must be"):
        model.decode(torch.zeros(1, 3, 2, 8, 8))
    with pytest.raises(ConfigError, match="time_down"):
        vae_config("tiny", time_down=3).validate()
    with pytest.raises(ConfigError, match="enc_blocks needs 5 counts"):
        VAE(vae_config("tiny", space_down=16))
    with pytest.raises(ConfigError, match="do not divide evenly"):
        VAE(vae_config("tiny", channels=[8, 12, 16, 16]))
    with pytest.raises(ConfigError, match="unknown VAE size"):
        vae_config("huge")


def test_encoder_is_causal(model: VAE) -> None:
    x = torch.rand(1, 3, 17, 32, 32) * 2 - 1
    y = x.clone()
    y[:, :, 5] = -y[:, :, 5]  # frame 5 belongs to latent frame 2 (frames 5..8)
    a, b = model.encode(x), model.encode(y)
    assert torch.equal(a[:, :, :2], b[:, :, :2])
    assert not torch.allclose(a[:, :, 2], b[:, :, 2])


def test_decoder_is_causal(model: VAE) -> None:
    z = torch.randn(1, 4, 5, 4, 4)
    z2 = z.clone()
    z2[:, :, 2] += 1  # latent frame 2 decodes to frames 5..8
    a, b = model.decode(z), model.decode(z2)
    assert torch.equal(a[:, :, :5], b[:, :, :5])
    assert not torch.allclose(a[:, :, 5], b[:, :, 5])


def test_image_is_first_frame(model: VAE) -> None:
    """An image encodes exactly like the first frame of a video that starts with it."""
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    assert torch.allclose(model.encode(x[:, :, :1]), model.encode(x)[:, :, :1], atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 3])
def test_chunked_equals_whole(model: VAE, chunk: int) -> None:
    x = torch.rand(1, 3, 33, 32, 48) * 2 - 1
    with torch.no_grad():
        mean, _ = model.posterior(x)
        whole = model.decoder(mean)
    assert torch.allclose(model.encode(x, chunk=chunk), mean, atol=1e-5)
    assert torch.allclose(model.decode(mean, chunk=chunk), whole, atol=1e-5)
    parts = list(model.decode_chunks(mean, chunk=chunk))
    assert [p.shape[2] for p in parts][:2] == [1, 4 * chunk]
    assert torch.allclose(torch.cat(parts, 2), whole, atol=1e-5)


def test_tiling(model: VAE) -> None:
    x = torch.rand(1, 3, 5, 96, 128) * 2 - 1
    with torch.no_grad():
        mean, _ = model.posterior(x)
        whole = model.decoder(mean)
    # a tile as large as the frame is the untiled path
    assert torch.equal(model.encode(x, tile=128), model.encode(x))
    # overlapping tiles, blended: same shapes, close to the whole result
    zt = model.encode(x, tile=64, overlap=32)
    yt = model.decode(mean, tile=64, overlap=32)
    assert zt.shape == mean.shape and yt.shape == whole.shape
    assert (zt - mean).abs().mean() < 0.15 * mean.abs().mean()
    assert (yt - whole).abs().mean() < 0.15 * whole.abs().mean()


def test_latent_normalisation(model: VAE) -> None:
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    raw = model.encode(x)
    m = VAE(vae_config("tiny"))
    m.load_state_dict(model.state_dict())
    m.eval().set_latent_stats([0.5, -1.0, 0.0, 2.0], [2.0, 0.5, 1.0, 4.0])
    z = m.encode(x)
    expect = (raw - torch.tensor([0.5, -1.0, 0.0, 2.0]).view(1, 4, 1, 1, 1)) / torch.tensor([2.0, 0.5, 1.0, 4.0]).view(1, 4, 1, 1, 1)
    assert torch.allclose(z, expect, atol=1e-6)
    assert torch.allclose(m.decode(z), model.decode(raw), atol=1e-5)
    with pytest.raises(ConfigError, match="latent_std"):
        m.set_latent_stats([0.0] * 4, [1.0, 1.0, 0.0, 1.0])


def test_save_load_exact(model: VAE, tmp_path: Path) -> None:
    model.set_latent_stats([0.1, 0.2, 0.3, 0.4], [1.5, 2.5, 3.5, 4.5])
    model.save(tmp_path / "vae")
    loaded = VAE.load(tmp_path / "vae")
    assert loaded.cfg == model.cfg
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    assert torch.equal(model.encode(x), loaded.encode(x))
    assert torch.equal(model.decode(model.encode(x)), loaded.decode(loaded.encode(x)))
    model.set_latent_stats([], [])


def test_load_rejects_foreign_folders(model: VAE, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a folder"):
        load_vae(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="needs model.safetensors and config.yaml"):
        load_vae(tmp_path / "empty")
    other = tmp_path / "other"  # someone else's safetensors (e.g. a diffusers VAE)
    other.mkdir()
    save_file({"encoder.conv_in.weight": torch.zeros(2)}, str(other / "model.safetensors"))
    (other / "config.yaml").write_text("_class_name: AutoencoderKL\n")
    with pytest.raises(ValueError, match="not a tenku VAE"):
        load_vae(other)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"\x80\x04not safetensors at all")
    (junk / "config.yaml").write_text("format: tenku-vae\n")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_vae(junk)
    good = model.save(tmp_path / "good")
    (good / "config.yaml").write_text((good / "config.yaml").read_text().replace("latent_channels: 4", "latent_channels: 8"))
    with pytest.raises(ValueError, match="do not match the config"):
        load_vae(good)
    (good / "config.yaml").write_text(json.dumps({"format": "tenku-vae", "channels": "many"}))
    with pytest.raises(ValueError, match="not a valid tenku VAE config"):
        load_vae(good)


@pytest.mark.parametrize("folder", ["models/tenku-world/vae", "models/vae-world"])
def test_committed_folders_of_the_older_format_load_and_resave_in_the_one_format(folder: str, tmp_path: Path) -> None:
    """The bundled VAEs predate tenku.json (``tenku-vae`` metadata): they load, and saved again
    they are model folders like every other (tenku.weights), with the same tensors and config."""
    root = Path(__file__).parents[2]
    old = load_vae(root / folder)
    assert old.cfg.latent_mean and not (root / folder / "tenku.json").exists()
    new = load_vae(old.save(tmp_path / "vae"))
    assert json.loads((tmp_path / "vae" / "tenku.json").read_text())["kind"] == "vae"
    assert new.cfg == old.cfg
    a, b = old.state_dict(), new.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
