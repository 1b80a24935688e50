"""The gan_figures step: Fig 1a (a column per growth phase) and Fig 1b (final samples)."""

import numpy as np
from PIL import Image

from latentage.gan.gan_figures import gan_figures


def test_gan_figures_draw_each_phase_and_the_final_samples(tiny_generator, tmp_path):
    phases = [tiny_generator / "000001.pt", tiny_generator / "000002.pt"]
    gan_figures(phases, growth=tmp_path / "1a.png", samples=tmp_path / "1b.png", seed=4)
    with Image.open(tmp_path / "1a.png") as a, Image.open(tmp_path / "1b.png") as b:
        assert a.width > 300 and b.width > 500
        assert np.asarray(b.convert("L")).std() > 10
        assert a.height < a.width  # one column per phase, three rows
    again = tmp_path / "again.png"
    gan_figures(phases, growth=tmp_path / "1a_b.png", samples=again, seed=4)
    assert again.read_bytes() == (tmp_path / "1b.png").read_bytes()  # one seed, one figure
