"""Domain Fréchet distance: the FID formula on the bone-age CNN's penultimate features.

An Inception trained on ImageNet knows little about hands; the CNN that reads bone age does.
Real and generated images reach the CNN the same way: at the GAN's final resolution, resized
to the CNN's input by the CNN's own `prepare`.
"""

from __future__ import annotations

from latentage.metrics.fid import FrechetMetric


class DomainFD(FrechetMetric):
    name, needs = "domain_fd", "cnn"
