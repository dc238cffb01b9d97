"""What a training run shows while it runs: the progress bar and TensorBoard scalars (rank 0 only)."""

from __future__ import annotations

import time
from pathlib import Path

from breakgan.console import progress


class Report:
    """A progress bar (kimg, phase, speed) and TensorBoard events in the run folder, every ~2 s.

    On ranks other than 0 every method does nothing, so the loop calls them unconditionally.
    """

    INTERVAL_S = 2.0

    def __init__(self, run_dir: Path, *, main: bool, total_kimg: float, step: int, images_shown: int,
                 phase_name: str):
        self.main = main
        self._bar = self._writer = None
        self._total, self._done, self._phase = total_kimg, images_shown / 1000, phase_name
        self._t_last, self._img_last = time.perf_counter(), images_shown
        if main:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(run_dir), purge_step=step if step else None)

    def __enter__(self) -> "Report":
        if self.main:
            from rich.progress import TextColumn

            self._bar = progress(TextColumn("kimg"), TextColumn("{task.fields[phase]}"),
                                 TextColumn("{task.fields[speed]}"))
            self._bar.__enter__()
            self._task = self._bar.add_task("train", total=self._total, completed=self._done,
                                            phase=self._phase, speed="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        if self._writer is not None:
            self._writer.close()

    def scalar(self, name: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(name, value, step)

    def step(self, *, step: int, images_shown: int, phase, next_phase_name: str, stats: dict, aug_p: float,
             last: bool) -> None:
        """After a training step: refresh the bar and log scalars when INTERVAL_S has passed (or at the end)."""
        if not self.main:
            return
        now = time.perf_counter()
        if now - self._t_last <= self.INTERVAL_S and not last:
            return
        ips = (images_shown - self._img_last) / max(now - self._t_last, 1e-9)
        self._bar.update(self._task, completed=images_shown / 1000, phase=next_phase_name,
                         speed=f"{ips:.0f} img/s  aug {aug_p:.2f}")
        self._t_last, self._img_last = now, images_shown
        for name, value in (("loss/d", stats["loss_d"]), ("loss/g", stats["loss_g"]),
                            ("loss/penalty", stats["penalty"]), ("schedule/resolution", phase.resolution),
                            ("schedule/alpha", phase.alpha), ("schedule/kimg", images_shown / 1000),
                            ("schedule/batch", stats["batch"]), ("speed/img_per_s", ips), ("augment/p", aug_p)):
            self.scalar(name, value, step)
