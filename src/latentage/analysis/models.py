"""The generator and CNN as the analysis steps use them: `render(z) → images` and
`label(images) → (age months, male probability)`, batched, in memory on the device. Tests
swap in synthetic callables with the same shapes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Models:
    G: object
    predictor: object
    resolution: int
    device: torch.device
    batch_size: int = 64

    @classmethod
    def load(cls, generator_ckpt, cnn_ckpt, batch_size: int = 64) -> Models:
        from latentage.cnn.predict import BoneAgePredictor
        from latentage.device import select_device
        from latentage.gan.checkpoint import load_generator

        device = select_device()
        G, meta = load_generator(generator_ckpt, device)
        predictor = BoneAgePredictor.from_checkpoint(cnn_ckpt, device, batch_size)
        return cls(G, predictor, int(meta["resolution"]), device, batch_size)

    @torch.no_grad()
    def render(self, z: np.ndarray) -> torch.Tensor:
        """G's images of z (float, [-1, 1]), in chunks that bound memory at any resolution."""
        from latentage.latent.label_shard import generation_chunk

        chunk = generation_chunk(self.resolution, self.batch_size)
        out = [self.G(torch.from_numpy(np.asarray(part, np.float32)).to(self.device),
                      self.resolution).float()
               for part in np.array_split(z, max(1, -(-len(z) // chunk)))]
        return torch.cat(out)

    def label(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        out = self.predictor(images)
        return out["age"].float().cpu().numpy(), out["male_prob"].float().cpu().numpy()

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.label(self.render(z))


def read_pool(z_path, labels_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labelled latents: z (N×d float32), CNN age (months), male probability."""
    import pandas as pd

    from latentage.errors import InputError

    z = np.load(z_path)
    labels = pd.read_parquet(labels_path)
    if len(z) != len(labels) or not {"age", "male_prob"} <= set(labels.columns):
        raise InputError(f"{z_path} ({len(z)} rows) and {labels_path} ({len(labels)} rows, "
                         f"columns {list(labels.columns)}) do not form a labelled pool")
    return z.astype(np.float32), labels.age.to_numpy(np.float64), \
        labels.male_prob.to_numpy(np.float64)
