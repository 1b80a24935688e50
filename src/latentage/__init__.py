"""latentage: a progressive-growing GAN of pediatric hand radiographs and the bone-age
structure of its latent space, packaged as the steps of a Snakemake workflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("latentage")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
