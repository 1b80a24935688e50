"""The metric registry: name → metric class, one short module per metric (base.py says what
they share)."""

from latentage.metrics.domain_fd import DomainFD
from latentage.metrics.fid import FID
from latentage.metrics.inception_score import InceptionScore
from latentage.metrics.ms_ssim import MSSSIM
from latentage.metrics.swd import SWD

REGISTRY = {cls.name: cls for cls in (FID, InceptionScore, MSSSIM, SWD, DomainFD)}

__all__ = ["REGISTRY"]
