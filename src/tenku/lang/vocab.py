"""The physics world's vocabulary: surface words and phrases mapped to the
canonical names of :mod:`tenku.world.spec`, one table per category.

Keys are lowercase and written in *base form* (singular nouns, bare verbs):
the parser reduces inflections (``balls``, ``bounced``, ``sliding``) to these
before looking them up, and ``IRREGULAR`` covers what suffix rules cannot.
Multi-word keys are matched longest first, so ``"navy blue"`` wins over
``"blue"`` and ``"up and to the right"`` over ``"up"``. Hyphens count as spaces.

This module is data only; :mod:`tenku.lang.lexicon` reads it for the parser and
the captions (:mod:`tenku.lang.wording`) draw their wording from the ``CAPTION_*`` lists.
"""

from __future__ import annotations

# --- attributes ---------------------------------------------------------------

# Object colours (PALETTE). No background colour may appear here: "navy" is
# a backdrop, never a shape, so it is *not* a synonym of blue.
COLOR_WORDS: dict[str, str] = {
    **dict.fromkeys(["red", "crimson", "scarlet", "cherry", "ruby", "vermilion", "vermillion"], "red"),
    **dict.fromkeys(["green", "lime", "emerald", "jade", "grass green", "leaf green", "lime green"], "green"),
    **dict.fromkeys(["blue", "azure", "cobalt", "sapphire", "royal blue", "ultramarine", "cobalt blue"], "blue"),
    **dict.fromkeys(["yellow", "gold", "golden", "lemon", "canary"], "yellow"),
    **dict.fromkeys(["orange", "amber", "tangerine", "apricot"], "orange"),
    **dict.fromkeys(["purple", "violet", "lilac", "lavender", "indigo", "plum", "mauve", "amethyst"], "purple"),
    **dict.fromkeys(["cyan", "teal", "aqua", "turquoise", "aquamarine"], "cyan"),
    **dict.fromkeys(["white", "snow", "snowy", "ivory", "pearl", "milky", "snow white"], "white"),
    **dict.fromkeys(["pink", "rose", "magenta", "fuchsia", "hot pink", "bubblegum"], "pink"),
}
# Background colours (BACKGROUNDS); "grey" and "brown" double as floor colours.
BACKGROUND_COLOR_WORDS: dict[str, str] = {
    **dict.fromkeys(["black", "ebony", "jet", "jet black", "pitch black", "inky"], "black"),
    **dict.fromkeys(["charcoal", "charcoal grey", "charcoal gray", "graphite"], "charcoal"),
    **dict.fromkeys(["grey", "gray", "ash"], "grey"),
    **dict.fromkeys(["navy", "navy blue", "midnight", "midnight blue"], "navy"),
    **dict.fromkeys(["slate", "slate grey", "slate gray", "slate blue"], "slate"),
    **dict.fromkeys(["brown", "chocolate", "umber", "coffee"], "brown"),
    **dict.fromkeys(["olive", "olive green", "khaki"], "olive"),
    **dict.fromkeys(["maroon", "burgundy", "wine", "oxblood"], "maroon"),
}
# Floor-only colour words (FLOOR_COLORS minus the names shared with backgrounds).
FLOOR_COLOR_WORDS: dict[str, str] = dict.fromkeys(["sand", "sandy", "beige", "tan"], "sand")
# Other spellings of a world colour's own name: typing them is exact, so the
# expansion says nothing (any other colour word gets a note, see tenku.lang.colors).
EXACT_COLOR_NAMES: dict[str, str] = {"gray": "grey", "navy blue": "navy", "charcoal grey": "charcoal",
                                     "charcoal gray": "charcoal", "slate grey": "slate", "slate gray": "slate",
                                     "sandy": "sand"}

SHAPE_WORDS: dict[str, str] = {
    **dict.fromkeys(["circle", "ball", "disc", "disk", "dot", "sphere", "orb"], "circle"),
    **dict.fromkeys(["square", "box", "block", "cube", "tile"], "square"),
    **dict.fromkeys(["triangle", "wedge", "pyramid"], "triangle"),
    **dict.fromkeys(["star", "pentagram"], "star"),
    # not "loop": that word names a generation mode
    **dict.fromkeys(["ring", "donut", "doughnut", "hoop", "annulus", "torus"], "ring"),
}
# Nouns that name an object without saying which shape ("the red one" is handled apart).
GENERIC_NOUNS = ("shape", "object", "thing", "item", "body")

SIZE_WORDS: dict[str, str] = {
    **dict.fromkeys(["small", "tiny", "little", "mini", "miniature", "smaller", "smallest"], "small"),
    **dict.fromkeys(["medium", "medium sized", "mid sized", "midsize", "midsized", "mid size",
                     "average sized", "moderate sized", "moderately sized"], "medium"),
    **dict.fromkeys(["large", "big", "huge", "giant", "enormous", "massive", "larger", "bigger",
                     "largest", "biggest"], "large"),
}

# --- motion -------------------------------------------------------------------

MOTION_WORDS: dict[str, str] = {
    # rest
    **dict.fromkeys(["rest", "sit", "lie", "hang", "hover", "stay still", "stay put", "remain still",
                     "remain stationary", "stand still", "sit still", "keep still", "lie still",
                     "does not move", "do not move", "doesn't move", "don't move", "never move",
                     "not move", "not moving", "still", "motionless", "stationary", "static",
                     "unmoving", "in place", "at rest", "idle"], "rest"),
    # steady motion in a straight line
    **dict.fromkeys(["move", "glide", "drift", "slide", "travel", "zoom", "roll", "fly", "float",
                     "cruise", "coast", "sail", "skate", "scoot", "dart", "race", "wander", "creep",
                     "crawl", "shift", "skim", "whiz", "whizz", "streak", "zip", "hurtle", "speed along"], "move"),
    # bouncing around the frame off its walls
    **dict.fromkeys(["ricochet", "carom", "pinball", "ping pong", "bounce around", "bounce about",
                     "bounce off the walls", "bounce everywhere", "bounce back and forth",
                     "bounce to and fro", "bounce from side to side", "bounce side to side",
                     "bounce left and right", "bounce between the walls"], "bounce"),
    # falling under gravity (and bouncing on the floor)
    **dict.fromkeys(["fall", "drop", "tumble", "plummet", "plunge", "fall and bounce",
                     "drop and bounce", "fall down and bounce"], "fall"),
    # thrown: launched into a gravity arc
    **dict.fromkeys(["throw", "toss", "lob", "launch", "fling", "hurl", "arc", "catapult", "jump",
                     "leap", "hop", "kick", "pitch up"], "throw"),
}
# Bare "bounce"/"rebound" is ambiguous: the parser reads the words after it.
# A wall cue ("bounces around", "off the walls", "off the left edge") means the
# "bounce" motion; anything else ("bounces", "bounces on the floor", "bounces
# twice") means "fall", because a ball that just bounces is one dropped on a floor.
AMBIGUOUS_BOUNCE = ("bounce", "rebound")
BOUNCE_WALL_CUES = ("wall", "edge", "side", "border", "boundary", "corner", "around", "about",
                    "everywhere", "frame", "screen", "inside", "within")
BOUNCE_FLOOR_CUES = ("floor", "ground", "bottom")
# Words that mean "not moving" even after a motion verb ("floats motionless").
REST_MODIFIERS = ("still", "motionless", "stationary", "static", "unmoving", "in place", "at rest",
                  "stay still", "stay put", "remain still", "remain stationary", "stand still",
                  "sit still", "keep still", "lie still", "does not move", "do not move",
                  "doesn't move", "don't move", "never move", "not move", "not moving")
# Verbs that carry a direction with them.
MOTION_DIRECTION_WORDS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(["rise", "climb", "ascend"], ("move", "up")),
    **dict.fromkeys(["sink", "descend"], ("move", "down")),
}
# Arriving at a stop: an event, not a motion ("falls and comes to rest" is a fall).
SETTLE_WORDS = ("settle", "come to rest", "come to a rest", "come to a stop", "come to a halt",
                "roll to a stop", "slide to a stop", "stop", "halt", "come to rest on the floor")

# --- direction and place ---------------------------------------------------------


def _directions() -> dict[str, str]:
    d: dict[str, str] = {}
    for word, canon in (("left", "left"), ("right", "right")):
        for pre in ("to the", "toward the", "towards the"):
            d[f"{pre} {word}"] = canon
        d[f"{word}ward"] = d[f"{word}wards"] = canon
    for canon, adverbs, nouns in (("up", ("up", "upward", "upwards", "skyward", "skywards"), ("top",)),
                                  ("down", ("down", "downward", "downwards"), ("bottom",))):
        for a in adverbs:
            d[a] = canon
        for n in nouns:
            for pre in ("to the", "toward the", "towards the"):
                d[f"{pre} {n}"] = canon
    for v, vwords, nouns in (("up", ("up", "upward", "upwards"), ("top", "upper")),
                             ("down", ("down", "downward", "downwards"), ("bottom", "lower"))):
        for h in ("left", "right"):
            canon = f"{v}-{h}"
            for vw in vwords:
                for link in (" and to the ", " and ", " ", " and towards the ", " and toward the "):
                    d[f"{vw}{link}{h}"] = canon
                d[f"{h} and {vw}"] = d[f"{h}ward and {vw}"] = d[f"{vw} and {h}ward"] = canon
            for n in nouns:
                for pre in ("to the", "toward the", "towards the"):
                    d[f"{pre} {n} {h}"] = canon
    d.update({"from left to right": "right", "from right to left": "left",
              "from top to bottom": "down", "from bottom to top": "up"})
    return d


DIRECTION_WORDS: dict[str, str] = _directions()
# Side words that are a direction right after a verb ("drifts left", "pans right").
BARE_DIRECTIONS = {"left": "left", "right": "right"}

# Regions of the frame (where an object starts). Canonical: top-left, top,
# top-right, left, center, right, bottom-left, bottom, bottom-right; the parser
# prefixes "outside-" after "outside"/"beyond" ("just outside the left edge").
REGION_WORDS: dict[str, str] = {
    **{f"{v} {h}": f"{cv}-{h}" for v, cv in (("top", "top"), ("upper", "top"), ("bottom", "bottom"),
                                             ("lower", "bottom")) for h in ("left", "right")},
    **{f"{h} {v}": f"{cv}-{h}" for v, cv in (("top", "top"), ("bottom", "bottom")) for h in ("left", "right")},
    **dict.fromkeys(["top", "upper", "top centre", "top center", "top middle", "upper middle"], "top"),
    **dict.fromkeys(["bottom", "lower", "bottom centre", "bottom center", "bottom middle",
                     "lower middle"], "bottom"),
    **dict.fromkeys(["left", "middle left", "centre left", "center left"], "left"),
    **dict.fromkeys(["right", "middle right", "centre right", "center right"], "right"),
    **dict.fromkeys(["centre", "center", "middle", "dead centre", "dead center"], "center"),
}

# --- counts and reference ------------------------------------------------------

COUNT_WORDS: dict[str, int] = {
    "one": 1, "single": 1, "a single": 1, "two": 2, "a pair of": 2, "pair of": 2, "a couple of": 2,
    "couple of": 2, "three": 3, "a trio of": 3, "trio of": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a few": 3, "several": 3,
}
NEW_DETERMINERS = ("a", "an", "another")  # introduce a new object
DEFINITE_DETERMINERS = ("the", "this", "its", "their")  # refer back (or introduce, if nothing matches)
ORDINALS: dict[str, int] = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
                            "seventh": 7, "eighth": 8}

# --- the scene ------------------------------------------------------------------

BACKGROUND_KIND_WORDS: dict[str, str] = {
    **dict.fromkeys(["solid", "plain", "flat", "uniform", "single colour", "single color", "a single colour",
                     "a single color", "one colour", "one color",
                     "monochrome", "unpatterned"], "solid"),
    **dict.fromkeys(["gradient", "fade", "graded", "ombre", "gradual"], "gradient"),
    **dict.fromkeys(["stripe", "striped", "stripy", "stripey", "banded", "band", "pinstripe"], "stripes"),
    **dict.fromkeys(["checker", "checkerboard", "checkered", "chequer", "chequered", "chequerboard",
                     "checked", "chessboard", "check", "checker board", "chequer board"], "checker"),
}
BACKGROUND_NOUNS = ("background", "backdrop", "pattern", "back drop", "backcloth")
FLOOR_NOUNS = ("floor", "ground", "floor band", "ground line")
CAMERA_NOUNS = ("camera", "view", "viewpoint")
FRAME_NOUNS = ("frame", "scene", "screen", "picture", "image", "video", "clip", "shot", "animation",
               "sight", "canvas", "stage")
EDGE_NOUNS = ("edge", "side", "wall", "border", "corner", "boundary", "ceiling")
PAN_WORDS = ("pan", "track", "scroll", "sweep", "truck", "dolly")

# --- function words (never reported as unknown) -----------------------------------

LOCATION_PREPOSITIONS = ("in", "at", "near", "on", "inside", "within", "close to", "next to")
OUTSIDE_PREPOSITIONS = ("outside", "beyond", "just outside", "just beyond")
PREPOSITIONS = ("with", "into", "onto", "behind", "of", "by", "from", "to", "toward", "towards", "past",
                "across", "through", "over", "under", "against", "off", "around", "between", "along",
                "above", "below", "beneath", "beside", "in front of", "out of", "for", "about",
                "among", "upon", "via", "underneath", "atop", "throughout")
CONJUNCTIONS = ("and", "or", "then", "while", "as", "before", "until", "when", "but", "so", "whereas",
                "whereupon", "whilst", "and then", "afterwards", "later", "meanwhile", "finally",
                "eventually", "next", "soon after", "after", "after that", "after which")
PRONOUNS = ("it", "they", "them", "both", "each", "each one", "either")
RELATIVE_PRONOUNS = ("which", "who", "that")
EXISTENTIALS = ("there",)
# Verbs after which the next noun phrase is what the sentence is about.
INTRO_VERBS = ("see", "show", "feature", "contain", "depict", "include")
NEGATIONS = ("no", "not", "without", "never", "none", "isn't", "aren't", "doesn't", "don't", "nor")
# Verbs that say nothing about an object's attributes or motion kind.
IGNORED_VERBS = (
    "be", "is", "are", "was", "were", "been", "being", "am", "has", "have", "had", "does", "do", "did",
    "can", "will", "would", "could", "may", "might", "should", "start", "begin", "set off", "start off", "head",
    "go", "come", "continue", "keep", "make", "take", "get", "become", "look", "seem", "appear",
    "reappear", "disappear", "vanish", "emerge", "enter", "reenter", "re enter", "exit", "leave",
    "pass", "cross", "reach", "approach", "hit", "strike", "struck", "collide", "bump", "crash",
    "knock", "touch", "meet", "land", "hide", "hidden", "cover", "obscure", "conceal",
    "run", "stretch", "span", "fill", "play", "happen", "occur", "set", "remain", "stay", "return",
    "follow", "chase", "spin", "rotate", "turn", "twirl", "wobble", "push", "shove", "nudge",
    "glance", "graze", "finish", "carry", "watch", "shown", "seen",
    "visible", "invisible", "overlap", "swap", "trade", "change", "lose",
    "gain", "pick", "hold", "peek", "poke", "let", "slip", "smash", "slam", "ram",
)
IGNORED_ADJECTIVES = (
    "bright", "dark", "light", "pale", "deep", "vivid", "shiny", "glossy", "glowing", "simple", "lone",
    "other", "same", "different", "far", "very", "2d", "animated", "short", "minimal", "slow", "fast",
    "quick", "gentle", "steady", "whole", "entire", "empty", "soft", "muted", "smooth", "perfect",
    "round", "new", "colorful", "colourful", "coloured", "colored", "solitary", "only", "rather",
    "fairly", "quite", "pretty", "nice", "cute", "little bit", "a little bit", "tall", "wide", "thin", "thick",
    "opposite", "neighbouring", "neighboring", "nearby", "distant", "single coloured", "vertical",
    "horizontal", "diagonal", "high", "low", "open",
)
FUNCTION_WORDS = (
    "just", "also", "again", "back", "away", "straight", "once", "twice", "thrice", "time",
    "moment", "end", "beginning", "many", "much", "gravity", "air", "way", "path", "trajectory", "speed",
    "direction", "course", "collision", "contact", "impact", "all", "everything", "nothing", "colour",
    "color", "shade", "hue", "tone", "size", "distance", "height", "lot",
    "something", "each other", "one another", "itself", "themselves", "too", "already", "even",
    "ever", "we", "you", "i", "out", "here", "more", "less", "than", "some", "any", "every",
    "where", "what", "how", "half", "bit", "instant", "few", "rest of",
    "along the way", "over and over", "again and again", "at first", "at last", "at once",
    "for a moment", "for a while", "a while", "a moment", "shortly", "soon", "its way", "until the end",
    "the end", "the rest of the clip", "in view", "into view", "out of view", "out of sight",
    "first time", "second time", "partly", "fully", "halfway", "whole time",
    "entire time", "one by one", "side by side", "in turn", "apart", "together", "overhead",
)
# Shape nouns the captions prefer (a curated subset of SHAPE_WORDS).
CAPTION_SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "dot"),
    "square": ("square", "box", "block", "cube", "tile"),
    "triangle": ("triangle", "wedge", "pyramid"),
    "star": ("star",),
    "ring": ("ring", "donut", "hoop", "doughnut"),
}
CAPTION_SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "tiny", "little"),
    "medium": ("medium", "medium-sized", "mid-sized"),
    "large": ("large", "big", "huge"),
}
CAPTION_COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet"), "green": ("emerald", "lime"), "blue": ("azure", "cobalt"),
    "yellow": ("golden", "lemon"), "orange": ("amber", "tangerine"), "purple": ("violet", "lilac"),
    "cyan": ("teal", "turquoise", "aqua"), "white": ("ivory", "snow-white"), "pink": ("rose", "magenta"),
}
CAPTION_FLOOR_WORDS: dict[str, tuple[str, ...]] = {"grey": ("grey", "gray"), "brown": ("brown",),
                                                    "sand": ("sandy", "sand-coloured", "beige")}
# Irregular inflections the suffix rules miss.
IRREGULAR: dict[str, str] = {
    "fell": "fall", "fallen": "fall", "threw": "throw", "thrown": "throw", "flew": "fly", "flown": "fly",
    "flung": "fling", "slid": "slide", "sat": "sit", "lay": "lie", "lain": "lie", "lying": "lie",
    "hung": "hang", "risen": "rise", "rising": "rise", "sank": "sink", "sunk": "sink", "ran": "run",
    "came": "come", "went": "go", "gone": "go", "got": "get", "kept": "keep", "began": "begin",
    "begun": "begin", "hid": "hide", "leapt": "leap", "boxes": "box",
    "discs": "disc", "disks": "disk", "doughnuts": "doughnut", "stopped": "stop", "stopping": "stop",
    "panned": "pan", "panning": "pan", "struck": "struck", "seen": "seen", "shown": "shown",
    "hidden": "hidden", "made": "make", "centred": "centre", "centered": "center", "ones": "one",
}
