"""One seed, named streams.

The config's `seed` drives every random choice. Each use draws from its own stream,
`SeedSequence([seed, STREAMS[name], *keys])`: the name says what the numbers are for, and the
keys (an image index, a latent index, a step's first sample index, a restore count) make a draw
a pure function of what it is for, not of the order in which code happens to run. Adding a
stream never shifts another's numbers. Never derive seeds as `seed + k`.
"""

from __future__ import annotations

import numpy as np

# name → a fixed number; append new names, never renumber
STREAMS = {
    "phantom": 1,            # phantom image i: labels, anatomy, nuisance (key: i)
    "split": 2,              # the train/test split of prepare
    "gan.init": 3,           # initial weights of G and D
    "gan.data": 4,           # the order in which training images are shown
    "gan.noise": 5,          # z and mixing factors of a training step (keys: nimg, restores)
    "gan.grid": 6,           # the fixed latents of the fakes grids
    "cnn.init": 7,           # initial weights of the CNN heads (and backbone from scratch)
    "cnn.validation": 8,     # the validation split carved from train
    "cnn.order": 9,          # minibatch order per epoch
    "cnn.augment": 10,       # augmentation draws
    "latent": 11,            # latent i of the labelled pool (key: i)
    "metrics.reals": 12,     # which real images the metrics read, in which order
    "metrics.fakes": 13,     # latents of the generated images every snapshot is measured on
    "metrics.swd": 14,       # SWD neighbourhoods and projection directions (keys: set, level)
    "neighbours": 15,        # latents of the nearest-neighbour queries
    "lasso": 16,             # held-out part and CV folds of the LASSO
    "age_walk": 17,          # start latent of the walk
    "axes": 18,              # held-out latents of the attribute fits and the edit test
    "atlas": 19,             # starting latents per requested age and sex
    "figures": 20,           # latents of Fig 1a/1b
    "cnn.second_opinion": 21,  # base seed of the second-opinion CNN (its own cnn.* streams)
    "gan.augment": 22,       # ADA's transform parameters of a training step (keys: nimg, restores)
    "conditional.samples": 23,  # z of the conditional GAN's hands per request (keys: months, male)
}


def sequence(seed: int, name: str, *keys: int) -> np.random.SeedSequence:
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r}; add it to latentage.seeds.STREAMS")
    return np.random.SeedSequence([int(seed), STREAMS[name], *(int(k) for k in keys)])


def rng(seed: int, name: str, *keys: int) -> np.random.Generator:
    """A numpy Generator for the stream."""
    return np.random.default_rng(sequence(seed, name, *keys))


def integer(seed: int, name: str, *keys: int) -> int:
    """A 63-bit integer for the stream (to seed torch)."""
    a, b = sequence(seed, name, *keys).generate_state(2, np.uint32)
    return (int(a) << 31) ^ int(b)


def torch_generator(seed: int, name: str, *keys: int, device="cpu"):
    """A torch.Generator on `device` for the stream (CPU and CUDA draws differ; each is
    reproducible)."""
    import torch

    return torch.Generator(device=device).manual_seed(integer(seed, name, *keys))
