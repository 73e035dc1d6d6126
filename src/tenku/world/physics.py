"""Event-driven rigid-body physics of the world, exact in continuous time.

Between events every object moves ballistically (constant acceleration), so
its state at any time is a closed form of the last event's state. Events
(floor and wall bounces, collisions, settling) are found by solving for the
time of impact exactly, so trajectories do not depend on fps: a renderer
samples the same piecewise closed form at whatever frame times it needs.

Objects collide as discs of their size radius, elastically (mass from area),
and only with objects at the same depth; objects at different depths pass in
front of or behind each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tenku.world.spec import Event, SceneSpec

SETTLE_SPEED = 0.12  # units/s: a floor bounce slower than this comes to rest
MAX_EVENTS = 4000  # guard against Zeno cascades; the rest of the run is frozen
_EPS = 1e-9


@dataclass
class Trajectory:
    """Piecewise-ballistic trajectories of all objects.

    ``times[k]`` starts segment k; ``pos``, ``vel``, ``acc`` are (K, N, 2)
    states at the segment starts.
    """

    times: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    acc: np.ndarray
    events: list[Event]

    def state(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at times ``t``: two arrays (N, T, 2)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        k = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 1)
        dt = (t - self.times[k])[:, None, None]  # (T, 1, 1)
        p = self.pos[k] + self.vel[k] * dt + 0.5 * self.acc[k] * dt * dt
        v = self.vel[k] + self.acc[k] * dt
        return p.transpose(1, 0, 2), v.transpose(1, 0, 2)


def _roots(coeffs: list[float]) -> list[float]:
    """Real roots > eps of the polynomial with ``coeffs`` (highest first), ascending."""
    c = np.trim_zeros(np.asarray(coeffs, dtype=np.float64), "f")
    if len(c) < 2:
        return []
    if len(c) == 2:
        roots = [-c[1] / c[0]]
    elif len(c) == 3:
        a, b, cc = c
        disc = b * b - 4 * a * cc
        if disc < 0:
            return []
        q = -0.5 * (b + np.copysign(np.sqrt(disc), b))  # stable pair of roots
        roots = [q / a] + ([cc / q] if q != 0 else [])
    else:
        roots = [z.real for z in np.roots(c) if abs(z.imag) < 1e-7 * max(1.0, abs(z.real))]
    return sorted(float(z) for z in roots if z > _EPS)


def _axis_hit(x: float, v: float, a: float, target: float, sign: float) -> float:
    """Time until x + v t + a t^2 / 2 reaches target while moving in direction ``sign``."""
    for t in _roots([0.5 * a, v, x - target]):
        if (v + a * t) * sign > 0:
            return t
    return np.inf


def simulate(spec: SceneSpec, duration: float) -> Trajectory:
    """Simulate ``spec`` from t=0 to ``duration`` seconds. Deterministic."""
    spec.validate()
    objs = spec.objects
    n = len(objs)
    p = np.array([[o.x, o.y] for o in objs], dtype=np.float64)
    v = np.array([[o.vx, o.vy] for o in objs], dtype=np.float64)
    g = np.array([spec.gravity if o.gravity else 0.0 for o in objs])
    r = np.array([o.radius for o in objs])
    m = np.array([o.mass for o in objs])
    floor = spec.floor_y
    # resting on the floor: gravity cancelled by the contact
    settled = np.array([o.gravity and abs(o.y - o.radius - floor) < 1e-6 and abs(o.vy) < _EPS for o in objs])

    def acc() -> np.ndarray:
        a = np.zeros((n, 2))
        a[:, 1] = np.where(settled, 0.0, -g)
        return a

    times, P, V, A, events = [0.0], [p.copy()], [v.copy()], [acc()], []
    t = 0.0
    while t < duration and len(events) < MAX_EVENTS:
        a = acc()
        best, hit = np.inf, None
        for i, o in enumerate(objs):
            # floor (for everything that falls or bounces) and the walls
            if o.walls or o.gravity:
                if not settled[i]:
                    dt = _axis_hit(p[i, 1], v[i, 1], a[i, 1], floor + r[i], -1.0)
                    if dt < best:
                        best, hit = dt, ("floor", i)
            if o.walls:
                for where, axis, target, sign in (
                    ("left", 0, r[i], -1.0),
                    ("right", 0, spec.width - r[i], 1.0),
                    ("top", 1, 1.0 - r[i], 1.0),
                ):
                    dt = _axis_hit(p[i, axis], v[i, axis], a[i, axis], target, sign)
                    if dt < best:
                        best, hit = dt, (where, i)
        for i in range(n):
            for j in range(i + 1, n):
                if objs[i].depth != objs[j].depth:
                    continue
                dp, dv, da = p[j] - p[i], v[j] - v[i], a[j] - a[i]
                R = r[i] + r[j]
                # |dp + dv t + da t^2/2|^2 = R^2, a quartic in t
                c4 = 0.25 * da @ da
                c3 = dv @ da
                c2 = dv @ dv + dp @ da
                c1 = 2 * dp @ dv
                c0 = dp @ dp - R * R
                if c1 >= 0 and c0 >= -1e-12 and c4 == 0 and c3 == 0:
                    continue  # separating under uniform motion: never meet
                for dt in _roots([c4, c3, c2, c1, c0]):
                    if dt >= best:
                        break
                    rel_p = dp + dv * dt + 0.5 * da * dt * dt
                    if rel_p @ (dv + da * dt) < 0:  # approaching contacts only
                        best, hit = dt, ("pair", i, j)
                        break
        step = min(best, duration - t)
        p = p + v * step + 0.5 * a * step * step
        v = v + a * step
        t += step
        if hit is None or best > step:
            break
        kind = hit[0]
        if kind == "pair":
            i, j = hit[1], hit[2]
            nrm = p[j] - p[i]
            nrm /= np.linalg.norm(nrm)
            u1, u2 = v[i] @ nrm, v[j] @ nrm
            w1 = ((m[i] - m[j]) * u1 + 2 * m[j] * u2) / (m[i] + m[j])
            w2 = ((m[j] - m[i]) * u2 + 2 * m[i] * u1) / (m[i] + m[j])
            v[i] += (w1 - u1) * nrm
            v[j] += (w2 - u2) * nrm
            for k in (i, j):  # a knock lifts a resting object, or the floor holds it
                if settled[k] and v[k, 1] > _EPS:
                    settled[k] = False
                elif settled[k]:
                    v[k, 1] = 0.0
            events.append(Event(t=t, type="collision", objects=[i, j]))
        elif kind == "floor":
            i = hit[1]
            p[i, 1] = floor + r[i]
            e = spec.restitution if objs[i].gravity else 1.0
            v[i, 1] = -e * v[i, 1]
            kind = "floor_bounce" if objs[i].gravity else "wall_bounce"
            events.append(Event(t=t, type=kind, objects=[i], where="bottom"))
            if objs[i].gravity and v[i, 1] < SETTLE_SPEED:
                v[i, 1] = 0.0
                settled[i] = True
                events.append(Event(t=t, type="settle", objects=[i]))
        else:
            where, i = hit
            axis = 1 if where == "top" else 0
            p[i, axis] = {"left": r[i], "right": spec.width - r[i], "top": 1.0 - r[i]}[where]
            v[i, axis] = -v[i, axis]
            events.append(Event(t=t, type="wall_bounce", objects=[i], where=where))
        times.append(t)
        P.append(p.copy())
        V.append(v.copy())
        A.append(acc())
    if len(events) >= MAX_EVENTS:  # freeze rather than integrate through a cascade
        times.append(t)
        P.append(p.copy())
        V.append(np.zeros_like(v))
        A.append(np.zeros_like(v))
    return Trajectory(np.array(times), np.stack(P), np.stack(V), np.stack(A), events)
