"""The progressive-growing GAN: networks, schedule, loss, and the growth-phase training job."""
