"""What a growth-phase checkpoint holds, and where a phase starts from.

A checkpoint is the `TrainState` (G, D, G_ema, both Adam states, both loss scalers) plus the
progress: images seen, the level of detail of the last step, the fades the divergence guard
stretched, the restores so far, and the data order. z needs no saved random state: it is keyed
by the images seen (train.step_noise). Checkpoints load onto the CPU; `load_into` moves the
networks and optimiser states to the device.

A phase starts from its own progress checkpoint (a resumed job), else from phase R/2's final
checkpoint, else — 4² — from fresh networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from latentage.config import result_digest
from latentage.errors import LatentageError
from latentage.gan import checkpoint as ckpt
from latentage.gan.train import TrainState, network_kwargs

CHECKPOINT_VERSION = 2


@dataclass
class Progress:
    nimg: int = 0
    prev_lod: float = -1.0
    fade_stretch: dict[int, float] = field(default_factory=dict)
    restores: int = 0


def settings_digest(gan) -> str:
    """Hash of the gan settings that define the trained weights (not speed or cadence).
    Without schedule.total_kimg: it only says where the last phase ends, so a checkpoint (a
    finished phase, or the last phase's progress) is the same training under any total_kimg
    that reaches past it — training longer or shorter reruns the last phase only."""
    return result_digest(replace(gan, schedule=replace(gan.schedule, total_kimg=0.0)), "gan")


def phase_state(state: TrainState, progress: Progress, data_state: dict, gan, seed: int,
                res: int, alpha: float) -> dict:
    return {"version": CHECKPOINT_VERSION, "networks": network_kwargs(gan),
            "settings_digest": settings_digest(gan), "seed": seed, **state.state_dict(),
            "nimg": progress.nimg, "kimg": progress.nimg / 1000.0, "prev_lod": progress.prev_lod,
            "resolution": res, "alpha": alpha,
            "fade_stretch": {str(k): v for k, v in progress.fade_stretch.items()},
            "restores": progress.restores, "data": data_state}


def load_into(saved: dict, source, state: TrainState, progress: Progress, data, gan,
              full: bool = True) -> None:
    """Restore `saved` (a phase checkpoint) into the run. `full` = within-phase state too (a
    resume); a new phase starts with no stretched fades and no restores."""
    if saved.get("networks") != network_kwargs(gan):
        raise LatentageError(f"{source}: networks {saved.get('networks')} differ from the "
                             f"configured {network_kwargs(gan)}; rerun earlier phases")
    state.load_state_dict(saved)
    data.load_state_dict(saved["data"])
    progress.nimg, progress.prev_lod = int(saved["nimg"]), float(saved["prev_lod"])
    if full:
        progress.fade_stretch = {int(k): float(v) for k, v in saved["fade_stretch"].items()}
        progress.restores = int(saved["restores"])


def start(res: int, progress_file: Path, prev, state: TrainState, progress: Progress, data,
          gan, phase_kimg: tuple[float, float], log) -> bool:
    """Load where phase `res` (kimg [start, end)) starts; True when it resumes its own
    progress."""
    digest = settings_digest(gan)
    phase_start_kimg, phase_end_kimg = phase_kimg
    if progress_file.is_file():
        saved = ckpt.load(progress_file)
        same = saved.get("settings_digest") == digest and saved.get("resolution") == res
        if same and float(saved["kimg"]) < phase_end_kimg:
            load_into(saved, progress_file, state, progress, data, gan)
            log(f"phase {res}: resuming from {progress_file} at kimg {progress.nimg / 1000:.3f}")
            return True
        why = (f"is at kimg {float(saved['kimg']):g}, past the phase's end {phase_end_kimg:g} "
               f"(gan.schedule.total_kimg)" if same else "was written with other settings")
        log(f"phase {res}: {progress_file} {why}; starting over")
    if res == 4:
        progress.nimg = 0
        return False
    if prev is None:
        raise LatentageError(f"phase {res} needs phase {res // 2}'s checkpoint")
    saved = ckpt.load(prev)
    if saved.get("settings_digest") != digest:
        raise LatentageError(f"{prev} was trained with other gan settings; rerun phase "
                             f"{res // 2} (snakemake does this on its own)")
    load_into(saved, Path(prev), state, progress, data, gan, full=False)
    if abs(progress.nimg / 1000 - phase_start_kimg) > 1.0:
        raise LatentageError(f"{prev} ends at kimg {progress.nimg / 1000:.1f}, but phase {res} "
                             f"starts at {phase_start_kimg}")
    return False
