"""The world's caption language: the words, how text is read into a scene, and how
a scene is written as a caption. Prompts (:mod:`tenku.prompts`), the benchmark
(:mod:`tenku.eval`) and the world's dataset writer use it; its schema is
:mod:`tenku.world.spec` (the canonical colour, shape, size, motion and
direction names), the only part of the simulator it imports.

Reading, text -> :class:`~tenku.lang.parsed.ParsedPrompt`::

    vocab     surface words and phrases -> canonical names (data only)
    lexicon   text -> typed items (base forms, longest phrase first)
    phrases   items -> noun phrases
    parse     noun phrases and verbs -> objects, background, unknown words
    parsed    what the parser returns, and the scene sampler's hints

Writing, (SceneSpec, GroundTruth) -> text::

    wording   shared phrases, seeded synonym choice, start regions
    captions  short captions (what a user types), and captions() for both kinds
    detailed  dense Sora-style captions (what the model is conditioned on)

The dependency is one way: the simulator (spec, physics, render, sample) never
imports this package, and this package imports nothing of the world but its
spec. Two world modules do import it, each one module of it: the dataset writer
(``tenku.world.dataset``, the captions of the videos it renders) and the
``tenku world preview`` command (``tenku.world.cli``, the prompt it is given).
tests/lang/test_layering.py holds these rules.
"""
