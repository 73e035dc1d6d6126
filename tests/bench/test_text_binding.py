"""bench/text_binding.py: the shape count and the shape swap, on the simulator's own images."""

from tenku.world.render import render_scene


def test_the_simulators_images_are_drawn_as_prompted(bench_module):
    mod = bench_module("text_binding")
    cnt, pieces = mod.shapes(lambda e, seed: render_scene(e.spec, 128, 128, 8.0, 1)[0][0], seeds=1)
    assert pieces == {1: 20}  # one object drawn whole, once
    assert sum(cnt.values()) == len(mod.SHAPES) * len(mod.COLOURS)
    assert all(cnt[(s, s)] == len(mod.COLOURS) for s in mod.SHAPES), cnt


def test_the_swap_tells_the_image_deciding_from_the_caption_deciding(bench_module):
    from tenku.prompts.expand import expand_prompt

    mod = bench_module("text_binding")
    keeps = mod.shape_swap(lambda e, caption, seed: render_scene(e.spec, 128, 128, 8.0, 1)[0][0], seeds=1)
    assert keeps == {"render": 20}  # a draw that ignores the caption keeps every image's shape

    def follow(e, caption, seed):  # a draw that renders what the caption says
        return render_scene(expand_prompt(caption, seed, aspect=1.0, frames=1, fps=8.0).spec, 128, 128, 8.0, 1)[0][0]

    assert mod.shape_swap(follow, seeds=1) == {"caption": 20}
