"""The world-model benchmark (``tenku eval``): does a generated world obey physics?

Modules, in the order data flows through them:

- ``suites``: the fixed prompts (with seed, size, length and intended scene);
- ``run``: generate or load each video, score it, aggregate (any ``generate(item)``);
- ``segment``: objects by colour in CIELAB, connected components, shapes;
- ``tracking``: detections linked into tracks; pixels <-> world units;
- ``metrics`` / ``motion``: adherence, permanence, identity, laws of motion;
- ``checks``: frame-level checks (VBench flickering, background, the modes' checks);
- ``evaluate``: every metric of one clip; ``report``: metrics.json, report.md, plots;
- ``follow``: how closely a video follows a layout (``tenku.layout``): ADE to its boxes, extra tracks.

Definitions, thresholds and calibration numbers: docs/eval.md.
"""
