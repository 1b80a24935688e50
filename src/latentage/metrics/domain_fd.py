"""Domain Fréchet distance: the FID formula on the bone-age CNN's penultimate features.

An Inception trained on ImageNet knows little about hands; the CNN that reads bone age does.
The real statistics come from the same CNN on the real training images.
"""

from __future__ import annotations

from latentage.metrics.fid import FrechetMetric


class DomainFD(FrechetMetric):
    name, needs, stats = "domain_fd", "cnn", "cnn"
