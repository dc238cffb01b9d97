"""`breakgan sample` (images from seeds) and `breakgan metrics` (SWD against the dataset)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from breakgan.device import resolve_device
from breakgan.errors import BreakganError


def _label_index(label: Optional[str], info: dict, path: Path) -> Optional[int]:
    if label is None:
        return None
    if not info["num_classes"]:
        raise BreakganError(f"{path}: --label given but the generator is unconditional")
    names = list(info.get("labels") or [])
    if label in names:
        return names.index(label)
    if label.isdigit() and int(label) < info["num_classes"]:
        return int(label)
    known = ", ".join(names) if names else f"0..{info['num_classes'] - 1}"
    raise BreakganError(f"{path}: unknown --label {label!r} (known: {known})")


def _check_json_folder(path: Path) -> None:
    """Refuse a --json that cannot be written before minutes of SWD, without making its folders yet (a later
    bad input must leave the disk as it was)."""
    folder = next((p for p in (path.parent, *path.parent.parents) if os.path.lexists(p)), Path("."))
    if not folder.is_dir():
        raise BreakganError(f"--json {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BreakganError(f"--json {path}: cannot write in {folder}")


def sample(
    run: Path = typer.Argument(..., help="Run folder (its latest checkpoint), checkpoint or exported generator."),
    seeds: str = typer.Option("0-15", "--seeds", help="Seeds, one image each: '0-15', '3,7,9-11'."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for seedNNNN.png, grid.png, interp-A-B.png."),
    grid: bool = typer.Option(False, "--grid", help="Also write grid.png with all seeds."),
    interp: Optional[str] = typer.Option(None, "--interp",
                                         help="Seeds to interpolate between in order (slerp), e.g. '0,5,9': "
                                              "one strip per consecutive pair."),
    steps: int = typer.Option(8, "--steps", min=2, max=256, help="Images per interpolation strip, ends included."),
    truncation: Optional[float] = typer.Option(None, "--truncation",
                                               help="Redraw latent entries beyond +-T (e.g. 1.5; 0.1..100): "
                                                    "less variety, more typical images."),
    label: Optional[str] = typer.Option(None, "--label",
                                        help="Class name or index for a conditional generator "
                                             "(default: the average of all classes)."),
    no_seeds: bool = typer.Option(False, "--no-seeds", help="Write only the interpolation strips."),
    batch: int = typer.Option(1, "--batch", min=1, max=1024,
                              help="Images per forward pass. 1 keeps each seed's image independent of "
                                   "the other seeds; larger is faster on a GPU."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
):
    """Sample images from a trained generator: one PNG per seed, a grid, slerp strips between seeds."""
    from breakgan.console import info as say
    from breakgan.console import progress
    from breakgan.gan import load_generator
    from breakgan.gan.sampling import parse_seeds, write_samples
    from breakgan.seeds import check_truncation
    from breakgan.stage import make_record, output_dir, write_record

    seed_list = [] if no_seeds else parse_seeds(seeds)
    interp_list = parse_seeds(interp, "--interp") if interp else []
    if not seed_list and not interp_list:
        raise BreakganError("nothing to write: --no-seeds without --interp")
    if len(interp_list) == 1:
        raise BreakganError("--interp needs at least two seeds, e.g. --interp 0,5")
    truncation = check_truncation(truncation)
    dev = resolve_device(device)
    G, meta = load_generator(run, device=dev)
    label_idx = _label_index(label, meta, run)
    total = len(seed_list) + steps * max(len(interp_list) - 1, 0)
    options = {"seeds": seed_list, "grid": grid, "interp": interp_list, "steps": steps,
               "truncation": truncation, "label": label_idx}
    with output_dir(out, "sample", inputs=[run]) as tmp, progress() as bar:
        task = bar.add_task(f"sample {meta['resolution']} px", total=total)
        written = write_samples(G, meta["latent_size"], seed_list, tmp, grid=grid, interp=interp_list,
                                steps=steps, truncation=truncation, label=label_idx, batch_size=batch,
                                device=dev, progress=lambda k: bar.advance(task, k))
        write_record(tmp, make_record("sample", options, {"generator": meta.get("path") or run},
                                      kimg=meta.get("kimg"), resolution=meta.get("resolution")))
    say(f"wrote {len(written)} images to {out} ({meta['resolution']} px, {meta['kimg']:g} kimg)")


def metrics(
    run: Path = typer.Argument(..., help="Run folder (its latest checkpoint), checkpoint or exported generator."),
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder from `breakgan ingest`."),
    num: int = typer.Option(2048, "--num", min=1, max=65536,
                            help="Images per set (the paper used 16384; fewer is faster and noisier)."),
    floor: bool = typer.Option(False, "--floor",
                               help="Also compute the real-vs-real noise floor on two disjoint real sets."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for the real subset, latents, patches, directions."),
    batch: int = typer.Option(32, "--batch", min=1, max=1024, help="Images per generator forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
):
    """Sliced Wasserstein distance (x1e3, per pyramid level) between generated and real frames."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from breakgan.console import progress, warn
    from breakgan.gan import load_generator
    from breakgan.gan.evaluate import open_packed, swd_against_dataset
    from breakgan.seeds import check_seed
    from breakgan.stage import check_out_file, write_json_atomic

    seed = check_seed(seed, "--seed")
    if json_out is not None:
        check_out_file(json_out, "metrics", option="--json")
        _check_json_folder(json_out)
    dev = resolve_device(device)
    G, meta = load_generator(run, device=dev)
    open_packed(dataset, int(meta["resolution"]))  # fail on a bad dataset before any progress output
    # Scoped, not torch.set_grad_enabled(False): the command may run in-process (pipeline, tests).
    with torch.no_grad(), progress() as bar:
        tasks: dict[str, int] = {}

        def tick(what: str, advance: int, total: int):
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.advance(tasks[what], advance)

        result = swd_against_dataset(G, meta, dataset, num=num, seed=seed, floor=floor, batch_size=batch,
                                     device=dev, progress=tick)
    if result["num"] < num:
        warn(f"{dataset}: only {result['num']} frames at {meta['resolution']} px, so --num {num} became "
             f"{result['num']}")
    if floor and result["num_floor"] < result["num"]:
        warn(f"the real-vs-real floor uses two sets of {result['num_floor']} (the dataset cannot hold two "
             f"disjoint sets of {result['num']}); smaller sets give larger SWD, so it overstates the floor")
    levels = [k for k in result["fake"] if k != "mean"]
    table = Table(title=f"SWD x1e3 ({result['num']} images, {meta['resolution']} px, {meta['kimg']:g} kimg)")
    table.add_column("set")
    for r in levels:
        table.add_column(f"{r} px", justify="right")
    table.add_column("mean", justify="right")
    table.add_row("fake vs real", *(f"{result['fake'][k]:.2f}" for k in [*levels, "mean"]))
    if result["floor"] is not None:
        table.add_row(f"real vs real ({result['num_floor']})",
                      *(f"{result['floor'][k]:.2f}" for k in [*levels, "mean"]))
    Console().print(table)  # stdout, so the numbers can be piped
    if json_out is not None:
        data = {"stage": "metrics", "checkpoint": meta.get("path"), "kimg": meta["kimg"], "resolution": meta["resolution"],
                "dataset": str(dataset), "seed": seed, **result}
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(json_out, data)
        except OSError as e:
            raise BreakganError(f"{json_out}: cannot write ({e.strerror or e})") from None
