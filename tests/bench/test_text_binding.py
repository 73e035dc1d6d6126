"""bench/text_binding.py: the shape count, on the simulator's own images (every shape right)."""

from tenku.world.render import render_scene


def test_the_simulators_images_are_drawn_as_prompted(bench_module):
    mod = bench_module("text_binding")
    cnt = mod.shapes(lambda e, seed: render_scene(e.spec, 128, 128, 8.0, 1)[0][0], seeds=1)
    assert sum(cnt.values()) == len(mod.SHAPES) * len(mod.COLOURS)
    assert all(cnt[(s, s)] == len(mod.COLOURS) for s in mod.SHAPES), cnt
