"""Colour names people type -> the world's colours.

The world draws objects in 9 colours (``spec.PALETTE``), backdrops in 8
(``spec.BACKGROUNDS``) and floors in 3 (``spec.FLOOR_COLORS``). People type
many more names: "navy blue", "chartreuse", "sky blue", "light grey". Every
named colour of two maintained tables stands for the world colour nearest to it:

- the CSS4/X11 names (148: "chartreuse", "darkgreen", also read as "dark green"),
- the XKCD colour survey names (949, e.g. "navy blue", "sky blue", "burnt orange":
  what people answered when asked to name a colour, so where both tables know
  a name, its XKCD value is used).

Both come from matplotlib's colour tables (``matplotlib.colors.CSS4_COLORS`` and
``XKCD_COLORS``, a dependency already).

Nearness is the CIEDE2000 colour difference between the colours in CIELAB (sRGB,
D65 white), the standard perceptual distance: equal steps look about equally
different, unlike distances in RGB. The nearest world colour is the one of the
table for the word's role (an object's, a backdrop's or a floor's) with the
smallest difference, a hueless name (a grey, black) choosing among the role's
hueless colours (white for an object; black, charcoal, grey for a backdrop) and
a coloured name among its coloured ones.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

from tenku.lang import vocab as V
from tenku.world.spec import BACKGROUNDS, FLOOR_COLORS, PALETTE

RGB = tuple[int, int, int]


def _matplotlib_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(CSS4, XKCD) name -> hex tables. Read from matplotlib's data file itself:
    ``import matplotlib.colors`` would add about half a second to every tenku command."""
    try:  # the data module alone: plain dict literals, no imports
        package = importlib.util.find_spec("matplotlib")
        path = Path(list(package.submodule_search_locations)[0]) / "_color_data.py"  # type: ignore[union-attr]
        spec = importlib.util.spec_from_file_location("_tenku_matplotlib_color_data", path)
        data = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(data)  # type: ignore[union-attr]
        return data.CSS4_COLORS, data.XKCD_COLORS
    except (AttributeError, OSError, TypeError, IndexError):  # a matplotlib laid out differently
        from matplotlib.colors import CSS4_COLORS, XKCD_COLORS

        return CSS4_COLORS, XKCD_COLORS


def _rgb(hex_: str) -> RGB:
    return (int(hex_[1:3], 16), int(hex_[3:5], 16), int(hex_[5:7], 16))


def _split(name: str, words: set[str]) -> str:
    """A CSS name written as one word in words ("darkslategray" -> "dark slate gray"),
    the fewest words that cover it; the name itself when it cannot be split."""
    best: list[list[str] | None] = [[]] + [None] * len(name)
    for end in range(1, len(name) + 1):
        for start in range(end):
            head = best[start]
            if head is not None and name[start:end] in words and (
                    best[end] is None or len(head) + 1 < len(best[end])):  # type: ignore[arg-type]
                best[end] = head + [name[start:end]]
    return " ".join(best[-1]) if best[-1] else name


def _named_colors(css: dict[str, str], xkcd: dict[str, str]) -> dict[str, RGB]:
    out = {n[5:]: _rgb(h) for n, h in xkcd.items() if re.fullmatch(r"[a-z]+( [a-z]+){0,2}", n[5:])}
    words = {w for n in out for w in n.split() if len(w) > 2} | {  # words of the XKCD names and the vocabulary
        w for t in (V.COLOR_WORDS, V.BACKGROUND_COLOR_WORDS, V.FLOOR_COLOR_WORDS, V.IGNORED_ADJECTIVES) for w in t}
    for name, hex_ in css.items():
        for form in (name, _split(name, words)):
            out.setdefault(form, _rgb(hex_))
    return out


_CSS, _XKCD = _matplotlib_tables()
CSS4_NAMES: tuple[str, ...] = tuple(_CSS)  # as the table writes them: "chartreuse", "darkslategray"
# Every colour name (words joined by single spaces) -> sRGB.
NAMED_COLORS: dict[str, RGB] = _named_colors(_CSS, _XKCD)
# Words that end a colour name of several words ("sky blue", "burnt orange"): the
# CSS names of one word and the vocabulary's colour words. A name of several words
# is read as a colour only if it ends in one of these, so "baby poop" is not.
COLOR_TERMS = frozenset(_CSS) | frozenset(
    w for table in (V.COLOR_WORDS, V.BACKGROUND_COLOR_WORDS, V.FLOOR_COLOR_WORDS) for w in table if " " not in w)


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours given as 0-255 values, shape (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)  # linear light
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 difference of CIELAB colours (Sharma, Wu and Dalal 2005), broadcast over (..., 3)."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    cbar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    grey = c1 * c2 == 0  # a hue is undefined for a grey
    dh = h2 - h1
    dh = np.where(grey, 0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    d_l, d_c, d_h = l2 - l1, c2 - c1, 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh) / 2)
    lbar, cbar = (l1 + l2) / 2, (c1 + c2) / 2
    hsum = h1 + h2
    hbar = np.where(grey, hsum, np.where(np.abs(h1 - h2) <= 180, hsum / 2,
                                         np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    s_l = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cbar, 1 + 0.015 * cbar * t
    r_t = -np.sin(np.radians(60 * np.exp(-(((hbar - 275) / 25) ** 2)))) * 2 * np.sqrt(cbar**7 / (cbar**7 + 25.0**7))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def nearest(rgb: RGB, table: dict[str, RGB]) -> str:
    """The name in ``table`` (name -> sRGB) nearest to ``rgb`` by CIEDE2000, among the
    table's hueless colours if ``rgb`` is hueless (a grey), else among its coloured ones."""
    names = list(table)
    target, labs = lab(np.array(rgb)), lab(np.array([table[n] for n in names]))
    d = delta_e(target[None], labs)
    # A mid grey is about equally far from every hue (29-31 from each of the object
    # colours), so CIEDE2000 alone would paint "gray" pink; a grey stays a grey.
    hueless = np.hypot(labs[:, 1], labs[:, 2]) < HUELESS_CHROMA
    same = hueless == (np.hypot(target[1], target[2]) < HUELESS_CHROMA)
    d = np.where(same if same.any() else True, d, np.inf)
    return names[int(np.argmin(d))]


# CIELAB chroma below which a colour counts as hueless: the greys, black, white, ivory.
HUELESS_CHROMA = 10.0
ROLES: dict[str, dict[str, RGB]] = {"object": PALETTE, "background": BACKGROUNDS, "floor": FLOOR_COLORS}


def world_color(text: str, value: str | RGB, role: str) -> tuple[str, str | None]:
    """The world colour a colour word stands for in ``role`` ("object", "background",
    "floor"), and a note for the expansion's warnings when it is not that colour's own
    name. ``value`` is the word's canonical name (a vocabulary word) or its sRGB (a
    name of the colour tables). A vocabulary word of the role keeps its meaning
    ("crimson" is red); any other colour goes to the nearest colour of the role."""
    table = ROLES[role]
    if isinstance(value, str) and value in table:
        if text == value or V.EXACT_COLOR_NAMES.get(text) == value:
            return value, None
        return value, f"{text} drawn as {value} (a synonym in the world's vocabulary)"
    if isinstance(value, str):  # a colour of another role: "a navy ball", "a red background"
        rgb = NAMED_COLORS.get(text) or {**FLOOR_COLORS, **BACKGROUNDS, **PALETTE}[value]
    else:
        rgb = value
    name = nearest(rgb, table)
    return name, f"{text} drawn as {name} (nearest world colour)"
