"""Latent fan-out: latents generated and labelled by the bone-age CNN in shards, gathered."""
