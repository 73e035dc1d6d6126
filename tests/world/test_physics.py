"""The simulator against closed forms."""

import numpy as np
import pytest

from tenku.world.physics import simulate
from tenku.world.spec import BackgroundSpec, ObjectSpec, SceneSpec


def ball(**kw):
    base = dict(shape="circle", color="red", size="medium", motion="fall", x=0.5, y=0.8, gravity=True)
    return ObjectSpec(**{**base, **kw})


def scene(*objs, floor=True, **kw):
    return SceneSpec(width=1.0, objects=list(objs), background=BackgroundSpec(floor=floor), **kw)


def test_free_fall_follows_closed_form_until_first_bounce():
    s = scene(ball(), gravity=1.5)
    tr = simulate(s, 3.0)
    o = s.objects[0]
    h0 = o.y - (s.floor_y + o.radius)  # drop height of the centre
    t_hit = np.sqrt(2 * h0 / s.gravity)
    first = tr.events[0]
    assert first.type == "floor_bounce"
    assert first.t == pytest.approx(t_hit, rel=1e-9)
    t = np.linspace(0, t_hit, 50, endpoint=False)  # t_hit itself starts the next segment
    p, v = tr.state(t)
    np.testing.assert_allclose(p[0, :, 1], o.y - s.gravity * t**2 / 2, atol=1e-12)
    np.testing.assert_allclose(v[0, :, 1], -s.gravity * t, atol=1e-12)


@pytest.mark.parametrize("e", [0.5, 0.75, 0.9])
def test_bounce_apex_is_e_squared_h0(e):
    s = scene(ball(), restitution=e)
    tr = simulate(s, 3.0)
    o = s.objects[0]
    rest = s.floor_y + o.radius
    h0 = o.y - rest
    b1, b2 = [ev.t for ev in tr.events if ev.type == "floor_bounce"][:2]
    t = np.linspace(b1, b2, 20001)
    apex = tr.state(t)[0][0, :, 1].max() - rest
    assert apex == pytest.approx(e**2 * h0, rel=1e-6)


def test_elastic_collision_conserves_momentum_and_energy():
    a = ObjectSpec("circle", "red", "large", "move", x=0.25, y=0.5, vx=0.4, vy=0.05, walls=False)
    b = ObjectSpec("square", "blue", "small", "move", x=0.75, y=0.52, vx=-0.3, vy=0.0, walls=False)
    s = scene(a, b, floor=False)
    tr = simulate(s, 1.5)
    hit = [ev for ev in tr.events if ev.type == "collision"]
    assert len(hit) == 1
    m = np.array([a.mass, b.mass])
    _, v0 = tr.state(hit[0].t - 1e-6)
    _, v1 = tr.state(hit[0].t + 1e-6)
    v0, v1 = v0[:, 0], v1[:, 0]
    np.testing.assert_allclose((m[:, None] * v0).sum(0), (m[:, None] * v1).sum(0), atol=1e-9)
    assert (m * (v0**2).sum(1)).sum() == pytest.approx((m * (v1**2).sum(1)).sum(), rel=1e-9)
    assert not np.allclose(v0, v1)  # they did exchange momentum
    p, _ = tr.state(hit[0].t)
    assert np.hypot(*(p[0, 0] - p[1, 0])) == pytest.approx(a.radius + b.radius, abs=1e-9)


def test_different_depths_pass_through_each_other():
    a = ObjectSpec("circle", "red", "large", "move", x=0.25, y=0.5, vx=0.4, depth=0)
    b = ObjectSpec("square", "blue", "small", "move", x=0.75, y=0.5, vx=-0.4, depth=1)
    tr = simulate(scene(a, b, floor=False), 2.0)
    assert not [e for e in tr.events if e.type == "collision"]


def test_wall_bounce_reflects_velocity_and_keeps_speed_without_gravity():
    o = ObjectSpec("circle", "red", "small", "bounce", x=0.5, y=0.5, vx=0.5, vy=0.3)
    tr = simulate(scene(o, floor=False), 4.0)
    walls = [e for e in tr.events if e.type == "wall_bounce"]
    assert {e.where for e in walls} >= {"left", "right", "top"}
    t = np.linspace(0, 4, 400)
    p, v = tr.state(t)
    np.testing.assert_allclose(np.hypot(v[0, :, 0], v[0, :, 1]), np.hypot(0.5, 0.3), rtol=1e-9)
    r = o.radius
    assert p[0, :, 0].min() >= r - 1e-9 and p[0, :, 0].max() <= 1 - r + 1e-9


def test_bounces_settle_instead_of_zeno_and_never_sink():
    s = scene(ball(), restitution=0.6)
    tr = simulate(s, 20.0)
    assert any(e.type == "settle" for e in tr.events)
    p, _ = tr.state(np.linspace(0, 20, 2000))
    assert p[0, :, 1].min() >= s.floor_y + s.objects[0].radius - 1e-9


def test_objects_without_walls_leave_the_world():
    o = ObjectSpec("circle", "red", "small", "move", x=0.5, y=0.5, vx=0.5, walls=False)
    tr = simulate(scene(o, floor=False), 3.0)
    assert tr.state(3.0)[0][0, 0, 0] == pytest.approx(2.0)


def test_state_is_independent_of_the_sampling_times():
    s = scene(ball(vx=0.3), ObjectSpec("star", "green", "large", "bounce", x=0.3, y=0.4, vx=-0.4, vy=0.2))
    tr = simulate(s, 4.0)
    coarse = tr.state(np.arange(9) / 2.0)[0]
    fine = tr.state(np.arange(97) / 24.0)[0][:, ::12]
    np.testing.assert_allclose(coarse, fine, atol=1e-12)
    # simulating longer does not change the past
    longer = simulate(s, 10.0).state(np.arange(9) / 2.0)[0]
    np.testing.assert_allclose(coarse, longer, atol=1e-12)
