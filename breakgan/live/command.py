"""`breakgan live`: play a drums pattern on a clock and stream it to TouchDesigner over OSC."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

import typer

from breakgan.errors import BreakganError


def live(
    drums: Path = typer.Option(..., "--drums", help="Drums output folder (its cand-01) or a cand-NN folder."),
    candidate: Optional[int] = typer.Option(None, "--candidate", min=1,
                                            help="Candidate number in a drums output folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Where to send OSC (TouchDesigner's machine)."),
    port: int = typer.Option(7000, "--port", min=1, max=65535, help="UDP port of TouchDesigner's OSC In."),
    tempo: Optional[float] = typer.Option(None, "--tempo",
                                          help="Playback tempo in bpm (default: the pattern's tempo)."),
    link: bool = typer.Option(False, "--link",
                              help="Use Ableton Link for tempo and beat (shared with TouchDesigner's "
                                   "Ableton Link CHOP); the pattern starts on the next Link bar."),
    bars: Optional[int] = typer.Option(None, "--bars", min=1,
                                       help="Play this many bars then stop (default: loop until Ctrl-C)."),
    rate: float = typer.Option(60.0, "--rate", min=1.0, max=1000.0,
                               help="Control rate in Hz for envelopes, latents, phase and tempo."),
    lookahead: float = typer.Option(0.0, "--lookahead", min=0.0, max=2000.0,
                                    help="Send each bundle this many ms early with its future timetag (for "
                                         "receivers that schedule by timetag); 0 = send on time."),
    parts: Optional[str] = typer.Option(None, "--parts", help="Parts to send, e.g. 'kick,snare' (default all 9)."),
    latent_dims: int = typer.Option(8, "--latent-dims", min=0,
                                    help="Send the first N latent components per part as /z0../zN-1."),
    latent_vector: bool = typer.Option(False, "--latent-vector",
                                       help="Also send each part's whole latent in one /latent message."),
    latent_size: int = typer.Option(512, "--latent-size", min=1,
                                    help="Latent length (ignored with --generator, which knows it)."),
    generator: Optional[Path] = typer.Option(None, "--generator",
                                             help="GAN run, checkpoint or exported generator: takes the "
                                                  "latent size from it."),
    keys: int = typer.Option(8, "--keys", min=1, help="Keyframes per part the latent cycles through."),
    seed: int = typer.Option(0, "--seed", min=0, help="Keyframe seed N (part i cycles through seeds "
                              "N+i*keys onwards, as render --keyframe-seed) and DrumsRNN seed."),
    attack_ms: float = typer.Option(60.0, "--attack-ms", min=0.0, help="Envelope and latent attack (ms)."),
    release_ms: float = typer.Option(400.0, "--release-ms", min=0.0, help="Envelope and latent release (ms)."),
    step: float = typer.Option(1.0, "--step", help="Keyframes advanced per hit at full velocity."),
    pulse: float = typer.Option(0.0, "--pulse", min=0.0, help="Latent push on each hit (0 = off)."),
    drift: float = typer.Option(0.0, "--drift", min=0.0, help="Slow latent drift between hits (0 = off)."),
    drums_model: Optional[Path] = typer.Option(None, "--drums-model",
                                               help="DrumsRNN model for /breakgan/regenerate (default: shipped)."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.01, max=10.0,
                                      help="DrumsRNN temperature for /breakgan/regenerate."),
    listen: Optional[int] = typer.Option(None, "--listen", min=0, max=65535,
                                         help="Take OSC control on this UDP port (tempo, play, stop, mute, "
                                              "solo, seed, temperature, regenerate, reseed)."),
    listen_host: str = typer.Option("127.0.0.1", "--listen-host",
                                    help="Address to listen on (0.0.0.0 opens it to the network)."),
    spin_ms: float = typer.Option(2.0, "--spin-ms", min=0.0, max=20.0,
                                  help="Busy-wait this long before each deadline (timing accuracy vs CPU)."),
    preview_port: Optional[int] = typer.Option(None, "--preview-port", min=0, max=65535,
                                               help="With --generator: render each part's frames in a "
                                                    "separate process and serve them as MJPEG on "
                                                    "http://127.0.0.1:PORT/ (open it in a browser)."),
    preview_fps: float = typer.Option(25.0, "--preview-fps", min=1.0, max=120.0,
                                      help="Preview frames per second (fewer if the generator is slower)."),
    preview_device: str = typer.Option("auto", "--preview-device", help="auto, cpu, cuda or cuda:N."),
    realtime: bool = typer.Option(False, "--realtime",
                                  help="Ask for real-time scheduling (Linux SCHED_FIFO; needs root or "
                                       "rtprio) so a busy machine does not delay the sends."),
):
    """Stream beat, per-part onsets, envelopes and latents over OSC to TouchDesigner, in time."""
    from breakgan.console import info
    from breakgan.live.clock import InternalClock, LinkClock, check_tempo
    from breakgan.live.osc_in import ControlListener
    from breakgan.live.osc_out import OscSender
    from breakgan.live.player import LiveOptions, Player, Regenerator
    from breakgan.parts import parse_parts
    from breakgan.timeline import timeline_from_drums
    from breakgan.trajectory import Motion

    timeline = timeline_from_drums(drums, candidate)
    bpm = check_tempo(tempo if tempo is not None else (timeline.tempo or 120.0), "--tempo")
    preview = None
    if preview_port is not None:
        if generator is None:
            raise BreakganError("--preview-port needs --generator (the GAN whose frames to show)")
        from breakgan.live.preview import Preview

        preview = Preview(generator, port=preview_port, device=preview_device, fps=preview_fps)
        latent_size = preview.latent_size
        info(f"live: preview of each part's frames at {preview.url}")
    elif generator is not None:
        from breakgan.gan import load_generator

        _, ginfo = load_generator(generator)
        latent_size = int(ginfo["latent_size"])
    options = LiveOptions(
        rate=rate, lookahead_s=lookahead / 1000.0, parts=parse_parts(parts), latent_dims=min(latent_dims, latent_size),
        latent_vector=latent_vector, latent_size=latent_size, keys=keys, seed=seed,
        motion=Motion(attack_ms=attack_ms, release_ms=release_ms, step=step, pulse=pulse, drift=drift, seed=seed),
        bars=bars, spin_s=spin_ms / 1000.0, temperature=temperature)

    clock = LinkClock(bpm, timeline.beats_per_bar) if link else InternalClock(bpm)
    try:
        sender = OscSender(host, port)
    except OSError as e:
        clock.close()
        raise BreakganError(f"cannot send OSC to {host}:{port}: {e}") from e
    listener = ControlListener(listen, listen_host).start() if listen is not None else None
    player = Player(timeline, clock, sender.send, options, controls=listener.controls if listener else None,
                    regenerator=Regenerator.default(drums_model), preview=preview)
    if threading.current_thread() is threading.main_thread():
        # `kill` ends it as cleanly as Ctrl-C does (zeroed values sent).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    where = f"OSC to {host}:{port}" + (f", control on {listener.host}:{listener.port}" if listener else "")
    if realtime:
        from breakgan.console import warn
        from breakgan.live.scheduler import realtime_priority

        why = realtime_priority()  # after the listener thread started: it stays ordinary
        if why:
            warn(f"--realtime not granted ({why}); running with ordinary priority")
    info(f"live: {drums} at {clock.tempo():g} bpm ({'Link' if link else 'internal clock'}), {where}; Ctrl-C stops")
    stats = None
    try:
        stats = player.run()
    except KeyboardInterrupt:
        stats = {"bundles": player.bundles_sent, "onset_lateness": player.onset_lateness.summary()}
    finally:
        if listener:
            listener.close()
        if preview:
            preview.close()
        sender.close()
        clock.close()
    late = stats["onset_lateness"]
    if late.get("count"):
        info(f"live: {stats['bundles']} bundles sent; onset lateness p50 {late['p50_ms']:.3f} ms, "
             f"p99 {late['p99_ms']:.3f} ms")
    else:
        info(f"live: {stats['bundles']} bundles sent")
