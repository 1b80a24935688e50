"""Latent-space analysis: LASSO of CNN age on z (Fig 3a), the age walk and its video (Fig 3b),
orthogonal age/sex axes, and the age-steered atlas."""
