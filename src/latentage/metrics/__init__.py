"""GAN metrics over training (the study's Fig 2) and nearest-neighbour checks: one short module
per metric, listed in `registry.REGISTRY` (imported only by the steps that measure, so the
data steps' CLI needs no torch)."""
