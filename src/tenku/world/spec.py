"""Scene specs and ground truth of the procedural physics world.

World units: the world is ``width`` units wide and 1 unit tall, ``y`` points up,
the origin is the bottom-left corner. Nothing here knows about pixels, so one
spec renders at any resolution, aspect ratio, fps and duration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

# Object colours: far apart in colour space so the benchmark's tracker can
# segment them, and none close to a background colour.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (45, 90, 235),
    "yellow": (245, 220, 40),
    "orange": (250, 140, 20),
    "purple": (150, 60, 210),
    "cyan": (40, 215, 225),
    "white": (245, 245, 245),
    "pink": (250, 125, 195),
}
# Background colours: dark and muted, away from every palette colour.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (18, 18, 22),
    "charcoal": (48, 48, 54),
    "grey": (85, 85, 90),
    "navy": (22, 28, 64),
    "slate": (62, 74, 92),
    "brown": (78, 56, 40),
    "olive": (62, 66, 34),
    "maroon": (70, 24, 34),
}
FLOOR_COLORS: dict[str, tuple[int, int, int]] = {
    "grey": (120, 120, 124),
    "brown": (112, 84, 58),
    "sand": (150, 136, 104),
}
SHAPES = ("circle", "square", "triangle", "star", "ring")
SIZES: dict[str, float] = {"small": 0.05, "medium": 0.075, "large": 0.11}  # radius in world units
MOTIONS = ("rest", "move", "bounce", "fall", "throw")
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, 1.0),
    "down": (0.0, -1.0),
    "up-left": (-math.sqrt(0.5), math.sqrt(0.5)),
    "up-right": (math.sqrt(0.5), math.sqrt(0.5)),
    "down-left": (-math.sqrt(0.5), -math.sqrt(0.5)),
    "down-right": (math.sqrt(0.5), -math.sqrt(0.5)),
}
BACKGROUND_KINDS = ("solid", "gradient", "stripes", "checker")
FLOOR_HEIGHT = 0.1  # top of the visible floor, world units
WIDTH_RANGE = (0.2, 10.0)  # a world is 1 unit tall and this wide (its video's width / height)


def check_width(width: float) -> None:
    """A ValueError unless a world ``width`` (its video's width / height) is in ``WIDTH_RANGE``."""
    if not WIDTH_RANGE[0] <= width <= WIDTH_RANGE[1]:
        raise ValueError(f"width / height {width:g} is outside the world's {WIDTH_RANGE[0]:g} to {WIDTH_RANGE[1]:g} "
                         "(it is 1 unit tall and that wide)")


def _star(points: int, outer: float, inner: float) -> np.ndarray:
    ang = np.pi / 2 + np.arange(2 * points) * np.pi / points
    rad = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)


# Outlines at size radius 1, counter-clockwise, y up. The collision disc is the
# unit circle; the flat bottoms sit on it, so resting shapes touch the floor.
POLYGONS: dict[str, np.ndarray] = {
    "square": np.array([[-0.88, -0.88], [0.88, -0.88], [0.88, 0.88], [-0.88, 0.88]]),
    "triangle": np.array([[-1.1, -0.95], [1.1, -0.95], [0.0, 1.0]]),
    "star": _star(5, 1.25, 0.52),
}
RING_INNER = 0.55  # inner radius of a ring, as a fraction of its size radius


@lru_cache(maxsize=1024)
def outline_extent(shape: str, angle: float = 0.0) -> tuple[float, float, float, float]:
    """The bounding box (x0, y0, x1, y1), y up, of a shape's outline at size radius 1 turned
    ``angle`` degrees anticlockwise (as the renderer turns it); a circle's and a ring's is the unit square."""
    if shape not in POLYGONS:
        return -1.0, -1.0, 1.0, 1.0
    p = POLYGONS[shape]
    if angle:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        p = p @ np.array([[c, s], [-s, c]])
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def shape_area(shape: str, radius: float) -> float:
    """Area in world units^2 of a shape of the given size radius (mass is proportional to it)."""
    if shape == "circle":
        unit = math.pi
    elif shape == "ring":
        unit = math.pi * (1 - RING_INNER**2)
    else:
        x, y = POLYGONS[shape].T
        unit = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return unit * radius * radius


@dataclass
class ObjectSpec:
    """One object: what it is, where it starts and how it is launched."""

    shape: str
    color: str
    size: str
    motion: str  # one of MOTIONS; how the object was launched (captions use it)
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    direction: str | None = None  # for move/bounce/throw
    gravity: bool = False  # feels gravity (fall, throw, rest on the floor)
    walls: bool = True  # bounces off the world's edges; False lets it leave the frame
    depth: int = 0  # objects at the same depth collide; higher depth is drawn in front
    angle: float = 0.0  # static rotation in degrees

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    @property
    def mass(self) -> float:
        return shape_area(self.shape, self.radius)


@dataclass
class BackgroundSpec:
    kind: str = "solid"  # one of BACKGROUND_KINDS
    colors: tuple[str, str] = ("charcoal", "charcoal")  # names in BACKGROUNDS
    floor: bool = False  # a visible floor band at the bottom (FLOOR_HEIGHT)
    floor_color: str = "grey"
    scale: float = 0.125  # stripe width / checker cell, world units


@dataclass
class SceneSpec:
    """A whole scene. ``to_dict``/``from_dict`` round-trip through JSON."""

    width: float  # world width in units (height is 1)
    objects: list[ObjectSpec]
    background: BackgroundSpec = field(default_factory=BackgroundSpec)
    gravity: float = 1.5  # units / s^2
    restitution: float = 0.75  # floor bounces of objects that feel gravity
    pan: float = 0.0  # camera speed in units / s (positive: the view moves right)

    @property
    def floor_y(self) -> float:
        return FLOOR_HEIGHT if self.background.floor else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["background"]["colors"] = list(self.background.colors)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneSpec":
        bg = dict(d.get("background", {}))
        if "colors" in bg:
            bg["colors"] = tuple(bg["colors"])
        spec = cls(
            width=float(d["width"]),
            objects=[ObjectSpec(**o) for o in d["objects"]],
            background=BackgroundSpec(**bg),
            gravity=float(d.get("gravity", 1.5)),
            restitution=float(d.get("restitution", 0.75)),
            pan=float(d.get("pan", 0.0)),
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what is allowed."""

        def check(value: Any, allowed: Any, what: str) -> None:
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")

        check_width(self.width)
        if not 1 <= len(self.objects) <= 8:
            raise ValueError(f"a scene holds 1 to 8 objects, got {len(self.objects)}")
        check(self.background.kind, BACKGROUND_KINDS, "background kind")
        for c in self.background.colors:
            check(c, BACKGROUNDS, "background colour")
        check(self.background.floor_color, FLOOR_COLORS, "floor colour")
        if not 0.0 <= self.restitution <= 1.0:
            raise ValueError(f"restitution {self.restitution} out of range [0, 1]")
        for o in self.objects:
            check(o.shape, SHAPES, "shape")
            check(o.color, PALETTE, "colour")
            check(o.size, SIZES, "size")
            check(o.motion, MOTIONS, "motion")
            if o.direction is not None:
                check(o.direction, DIRECTIONS, "direction")


@dataclass
class Event:
    """Something that happened: physics events come from the simulator, visibility
    events (occlusion_start/end, leave_frame, enter_frame) from the renderer."""

    t: float  # seconds
    type: str  # floor_bounce | wall_bounce | collision | settle | occlusion_start | occlusion_end | leave_frame | enter_frame
    objects: list[int]  # indices into SceneSpec.objects; collision: both, occlusion: [hidden, occluder]
    frame: int | None = None  # first frame at or after t (set when rendered)
    where: str | None = None  # wall_bounce / leave_frame / enter_frame: left, right, top, bottom


@dataclass
class GroundTruth:
    """Per-frame truth of one rendered video. Arrays are lists for JSON: index [object][frame]."""

    fps: float
    frames: int
    width: int  # pixels
    height: int
    position: list[list[list[float]]]  # world units (x, y)
    velocity: list[list[list[float]]]  # world units / s
    visible: list[list[bool]]
    reason: list[list[str | None]]  # None when visible, else "occluded" or "out_of_frame"
    visible_fraction: list[list[float]]  # visible pixel area / full pixel area of the object
    bbox: list[list[list[float] | None]]  # pixels [x0, y0, x1, y1] of the in-frame part, None if out of frame
    events: list[Event]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GroundTruth":
        d = dict(d)
        d["events"] = [Event(**e) for e in d["events"]]
        return cls(**d)
