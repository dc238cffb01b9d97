"""`breakgan studio`: serve the studio page for a generator (FastAPI + uvicorn, optional extra `studio`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from breakgan.errors import BreakganError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_run() -> Path:
    """The newest run folder under ./runs holding a checkpoint, else the demo generator of a checkout."""
    from breakgan.gan.checkpoint import latest_checkpoint

    runs = sorted((p for p in Path("runs").glob("*") if p.is_dir() and latest_checkpoint(p, required=False)),
                  key=lambda p: latest_checkpoint(p).stat().st_mtime)
    if runs:
        return runs[-1]
    demo = Path("assets/demo/generator.safetensors")
    if demo.is_file():
        return demo
    raise BreakganError("RUN: no run given and none found under ./runs (give a run folder or generator file)")


def studio_folder(run: Path) -> Path:
    """Where the studio keeps favourites, parts and blends: RUN/studio, or NAME-studio beside a generator file."""
    return run / "studio" if run.is_dir() else run.parent / f"{run.stem}-studio"


def free_port(host: str, port: int) -> int:
    """The port to listen on (a free one for 0), checked before the generator loads: a port in use or
    an unknown host is one line, not a server log."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            s.bind((host, port))
            return s.getsockname()[1]
    except OSError as e:
        raise BreakganError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None


def studio(
    run: Optional[Path] = typer.Argument(None, help="Run folder (latest checkpoint), checkpoint or exported "
                                         "generator (default: the newest run under ./runs)."),
    drums: Optional[Path] = typer.Option(None, "--drums", help="`breakgan drums` output folder: audition its "
                                         "candidates and render with them."),
    renders: Path = typer.Option(Path("renders/studio"), "--renders", help="Folder for the takes the Render "
                                 "button makes (take-001, ...)."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="TCP port (0 = any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. The default is this machine "
                             "only; anything else lets others on the network use the page."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
):
    """A local web page to choose the look: endless samples, favourites, morphs, blends, keys per part."""
    try:
        import uvicorn

        from breakgan.studio.app import create_app
    except ImportError as e:
        raise BreakganError(f"studio: needs the optional extra: pip install 'breakgan[studio]' ({e.name} missing)") from None
    from breakgan.console import info, warn

    run = run if run is not None else default_run()
    if not run.exists():
        raise BreakganError(f"{run}: no such run folder or generator file")
    port = free_port(host, port)
    if host not in LOCAL_HOSTS:
        warn(f"--host {host}: the studio is reachable from other machines; it has no login, anyone who can "
             "reach this port can generate images and start renders")
    app = create_app(run, studio_folder(run), drums=drums, renders=renders, device=device)
    # log_config=None: uvicorn's default logging.config.dictConfig would reconfigure this whole process's
    # logging: it closes every handler that exists (absl's, imported with note_seq, then closes the stream
    # it captured at import) and leaves uvicorn's loggers bound to the sys.stderr/stdout of this moment.
    # Unconfigured, uvicorn's warnings and errors reach logging's last resort: whatever sys.stderr is then.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    info(f"studio for {run} on http://{host if ':' not in host else f'[{host}]'}:{port}/  "
         f"(favourites in {studio_folder(run)}; Ctrl-C to stop)")
    server.run()
