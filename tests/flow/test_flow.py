"""The flow convention, schedules and the sampler against known answers."""

import pytest
import torch

from tenku.flow import (GuidedModel, add_noise, euler_sample, logit_normal, noise_from_v, resolution_shift,
                        sampling_sigmas, shift_sigmas, velocity, x0_from_v)


def test_conversions_round_trip():
    x0, n = torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3, 4, 5, 5)
    sigma = torch.rand(2, 4)
    x = add_noise(x0, n, sigma)
    v = velocity(x0, n)
    torch.testing.assert_close(x0_from_v(x, v, sigma), x0)
    torch.testing.assert_close(noise_from_v(x, v, sigma), n)
    torch.testing.assert_close(add_noise(x0, n, torch.zeros(2, 4)), x0)
    torch.testing.assert_close(add_noise(x0, n, torch.ones(2, 4)), n)


def test_sampler_integrates_a_constant_field_exactly():
    n = torch.randn(1, 2, 3, 4, 4)
    c = torch.randn_like(n)
    out = euler_sample(lambda x, s: c, n, sampling_sigmas(7, shift=3.0))
    torch.testing.assert_close(out, n - c)  # x(0) = x(1) - integral of c over sigma from 1 to 0


def test_true_velocity_recovers_the_data_with_one_step():
    x0, n = torch.randn(1, 2, 3, 4, 4), torch.randn(1, 2, 3, 4, 4)
    out = euler_sample(lambda x, s: n - x0, n, sampling_sigmas(1))
    torch.testing.assert_close(out, x0)


def test_condition_frames_stay_clean_and_get_sigma_zero():
    n = torch.randn(1, 2, 3, 4, 4)
    cond = torch.randn_like(n)
    mask = torch.tensor([[True, False, False]])
    seen = []

    def model(x, s):
        seen.append(s.clone())
        torch.testing.assert_close(x[:, :, 0], cond[:, :, 0])
        return torch.ones_like(x)

    out = euler_sample(model, n, sampling_sigmas(4), cond=cond, cond_mask=mask)
    assert all(float(s[0, 0]) == 0.0 and float(s[0, 1]) > 0 for s in seen)
    torch.testing.assert_close(out[:, :, 0], cond[:, :, 0])
    torch.testing.assert_close(out[:, :, 1:], n[:, :, 1:] - 1)


def test_guidance_one_is_the_conditional_output_and_g_extrapolates():
    def fn(x, s, ctx, mask):
        return x * 0 + ctx.sum(dim=(1, 2))[:, None, None, None, None]

    cond = (torch.ones(1, 3, 2), torch.ones(1, 3, dtype=torch.bool))
    uncond = (torch.zeros(1, 2, 2), torch.ones(1, 2, dtype=torch.bool))
    x, s = torch.randn(1, 1, 2, 2, 2), torch.rand(1, 2)
    torch.testing.assert_close(GuidedModel(fn, cond, uncond, 1.0)(x, s), fn(x, s, *cond))
    torch.testing.assert_close(GuidedModel(fn, cond, uncond, 3.0)(x, s), torch.full_like(x, 18.0))


def test_autoguidance_adds_the_step_away_from_the_weaker_model():
    """v = v_u + g (v_c - v_u) + a (v_c - v_guide,c), the guide called on the prompt; a = 0 or no
    guide leaves plain guidance."""
    def fn(x, s, ctx, mask):
        return x * 0 + ctx.sum(dim=(1, 2))[:, None, None, None, None]

    def guide(x, s, ctx, mask):
        return fn(x, s, ctx, mask) / 2  # the weaker model: half the conditional output

    cond = (torch.ones(1, 3, 2), torch.ones(1, 3, dtype=torch.bool))  # v_c = 6, v_guide,c = 3
    uncond = (torch.zeros(1, 2, 2), torch.ones(1, 2, dtype=torch.bool))  # v_u = 0
    x, s = torch.randn(1, 1, 2, 2, 2), torch.rand(1, 2)
    torch.testing.assert_close(GuidedModel(fn, cond, uncond, 3.0, guide, 2.0)(x, s), torch.full_like(x, 18.0 + 2 * 3))
    torch.testing.assert_close(GuidedModel(fn, cond, uncond, 1.0, guide, 0.5)(x, s), torch.full_like(x, 6.0 + 0.5 * 3))
    torch.testing.assert_close(GuidedModel(fn, cond, uncond, 3.0, guide, 0.0)(x, s), torch.full_like(x, 18.0))


def test_same_seed_same_sample():
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        n = torch.randn(1, 2, 3, 4, 4, generator=g)
        return euler_sample(lambda x, s: torch.tanh(x) * s[:, None, :, None, None], n, sampling_sigmas(5))
    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


def test_schedules():
    s = sampling_sigmas(10, shift=3.0)
    assert len(s) == 11 and s[0] == 1 and s[-1] == 0 and bool((s[1:] < s[:-1]).all())
    assert float(sampling_sigmas(10, start=0.6)[0]) == pytest.approx(0.6)
    torch.testing.assert_close(shift_sigmas(torch.tensor([0.0, 0.5, 1.0]), 3.0), torch.tensor([0.0, 0.75, 1.0]))
    assert resolution_shift(256) == 1.0 and resolution_shift(4096) == 3.0 and 1 < resolution_shift(1024) < 3
    t = logit_normal((10000,), generator=torch.Generator().manual_seed(0))
    assert 0 < float(t.min()) and float(t.max()) < 1 and abs(float(t.median()) - 0.5) < 0.02
    with pytest.raises(ValueError):
        sampling_sigmas(0)


def gaussian_field(c):
    """The exact velocity of the flow from N(0, I) at sigma 1 to N(0, c^2 I) at sigma 0:
    x_sigma = eps * std(sigma), std^2 = (1 - sigma)^2 c^2 + sigma^2."""
    def v(x, s):
        s = s[:, None, :, None, None]
        return x * (s - (1 - s) * c * c) / ((1 - s) ** 2 * c * c + s * s)
    return v


def test_dpm_solver_beats_euler_on_a_known_flow():
    from tenku.flow.sampler import sample

    n = torch.randn(2, 3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    c = 0.3
    errs = {}
    for method in ("euler", "dpm++2m"):
        for steps in (8, 16, 32, 64):
            out = sample(gaussian_field(c), n, sampling_sigmas(steps, shift=1.0), method=method)
            errs[method, steps] = float((out - c * n).abs().max())
    assert errs["dpm++2m", 8] < errs["euler", 8]  # measured: 0.14 vs 0.27 at 8 steps, 6x less at 32 and 64
    for steps in (16, 32, 64):
        assert errs["dpm++2m", steps] < errs["euler", steps] / 4, (steps, errs)
    for method in ("euler", "dpm++2m"):
        assert errs[method, 64] < errs[method, 8] / 6


def test_dpm_solver_keeps_condition_frames_and_agrees_with_euler_on_one_step():
    from tenku.flow.sampler import sample

    g = torch.Generator().manual_seed(1)
    n, cond = torch.randn(1, 2, 3, 4, 4, generator=g), torch.randn(1, 2, 3, 4, 4, generator=g)
    mask = torch.tensor([[True, False, False]])
    field = gaussian_field(0.5)
    out = sample(field, n, sampling_sigmas(6), cond=cond, cond_mask=mask, method="dpm++2m")
    assert torch.equal(out[:, :, 0], cond[:, :, 0])
    one = [sample(field, n, sampling_sigmas(1), method=m) for m in ("euler", "dpm++2m")]
    assert torch.equal(one[0], one[1])
    with pytest.raises(ValueError, match="allowed: euler, dpm"):
        sample(field, n, sampling_sigmas(2), method="heun")


@pytest.mark.parametrize("method", ["euler", "dpm++2m"])
def test_sampling_stays_on_the_noise_device(method):
    # on a GPU the noise lives there: every sigma the model sees must too (meta stands in for it)
    from tenku.flow.sampler import sample

    seen = []

    def model(x, sig):
        seen.append(sig.device.type)
        return torch.zeros_like(x)

    noise = torch.randn(1, 2, 3, 4, 4).to("meta")
    cond, mask = torch.zeros_like(noise), torch.tensor([[True, False, False]]).to("meta")
    out = sample(model, noise, sampling_sigmas(4), cond, mask, 0.05, method=method)
    assert out.device.type == "meta" and seen == ["meta"] * 4
