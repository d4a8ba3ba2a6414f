"""distill: skyboard's Django-free library, imported by the web app and the workers alike.

One package per step of the recipe: ``datasets`` (file layouts, readers, hashing,
decontamination), ``generation`` (backends and prompts), ``verify`` (math, code and multiple-choice
verifiers and the sandbox), ``curation`` (rendering and helpers of the curation pipeline),
``training`` (LLaMA-Factory settings, launcher, log reading) and ``evaluation`` (benchmarks and
metrics). Nothing here imports Django; ``tests/test_layers.py`` checks it.
"""
