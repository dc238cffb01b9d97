"""`breakgan live`: play a drums pattern on a clock and stream it to TouchDesigner over OSC."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

import typer

from breakgan.errors import BreakganError
from breakgan.live.sinks import source_name
from breakgan.paths import need_file


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
    latent_dims: Optional[int] = typer.Option(None, "--latent-dims", min=0,
                                              help="Send the first N latent components per part as "
                                                   "/z0../zN-1, N up to the latent size (default 8, or the "
                                                   "latent size if smaller; 0 = none)."),
    latent_vector: bool = typer.Option(False, "--latent-vector",
                                       help="Also send each part's whole latent in one /latent message."),
    latent_size: int = typer.Option(512, "--latent-size", min=1,
                                    help="Latent length (ignored with --generator, which knows it)."),
    generator: Optional[Path] = typer.Option(None, "--generator",
                                             help="GAN run, checkpoint or exported generator: takes the "
                                                  "latent size from it."),
    keys: int = typer.Option(8, "--keys", min=1, help="Keyframes per part the latent cycles through."),
    keyframe_seed: Optional[int] = typer.Option(None, "--keyframe-seed", help="Keyframe seed N: part i (kick=0, "
                                                "snare=1, ...) cycles through the latents of seeds N+i*keys "
                                                "onwards, as `render --keyframe-seed N`. Default 0."),
    motion_seed: Optional[int] = typer.Option(None, "--motion-seed", help="Motion seed: the directions of "
                                              "--pulse and --drift, as `render --motion-seed`. Default 0."),
    pattern_seed: Optional[int] = typer.Option(None, "--pattern-seed", help="Pattern seed: DrumsRNN's sampling "
                                               "for /breakgan/regenerate (each regenerate adds 1). Default 0."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Shorthand: sets --keyframe-seed, --motion-seed and "
                                       "--pattern-seed at once (each given on its own wins)."),
    favourites: Optional[Path] = typer.Option(None, "--favourites", help="Keyframes file, as `render "
                                              "--favourites` reads it: seeds (text or JSON list, or JSON "
                                              "{part: \\[seeds]}, e.g. the studio's parts.json) or latents (.npy, "
                                              "K x latent_size); parts it does not name use --keyframe-seed."),
    attack_ms: float = typer.Option(60.0, "--attack-ms", min=0.0, help="Envelope and latent attack (ms)."),
    release_ms: float = typer.Option(400.0, "--release-ms", min=0.0, help="Envelope and latent release (ms)."),
    step: float = typer.Option(1.0, "--step", help="Keyframes advanced per hit at full velocity."),
    pulse: float = typer.Option(0.0, "--pulse", min=0.0, help="Latent push on each hit (0 = off)."),
    pulse_ms: float = typer.Option(150.0, "--pulse-ms", help="Decay time of the pulse (ms), as render's."),
    drift: float = typer.Option(0.0, "--drift", min=0.0, help="Slow latent drift between hits (0 = off)."),
    drift_period: float = typer.Option(8.0, "--drift-period", help="Period of the slowest drift (s), as render's."),
    drums_model: Optional[Path] = typer.Option(None, "--drums-model",
                                               help="DrumsRNN model for /breakgan/regenerate (default: shipped)."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.01, max=10.0,
                                      help="DrumsRNN temperature for /breakgan/regenerate."),
    humanize: float = typer.Option(0.0, "--humanize",
                                   help="0..1: velocities and micro-timing of each /breakgan/regenerate pattern "
                                        "from the groove model, as `breakgan drums --humanize` (0 = quantized: on "
                                        "the 16th grid, new hits at the seed's mean velocity per part; 1 = full): "
                                        "the onsets' values and times follow. "
                                        "The --drums pattern plays as written (humanize it with `breakgan drums "
                                        "--humanize` or `breakgan drums groove`)."),
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
    ndi: bool = typer.Option(False, "--ndi",
                             help="With --generator: send each part's GAN frames as an NDI source ('breakgan "
                                  "kick', ...) for TouchDesigner's NDI In TOP (needs the ndi extra: pip install breakgan\\[ndi])."),
    spout: bool = typer.Option(False, "--spout", help="As --ndi, as Spout senders (Windows, the spout extra; "
                                                      "untested)."),
    syphon: bool = typer.Option(False, "--syphon", help="As --ndi, as Syphon servers (macOS, the syphon extra; "
                                                        "untested)."),
    ndi_layout: str = typer.Option("parts", "--ndi-layout",
                                   help="Which sources: 'parts' (one per part) and/or one composite 'breakgan' "
                                        "laid out as tiles, solo, pip or blend (render's layouts; blend mixes "
                                        "--ndi-part over the next part by its envelope), e.g. 'parts,tiles'."),
    ndi_part: Optional[str] = typer.Option(None, "--ndi-part", help="The part solo/pip/blend show (default: first)."),
    ndi_fps: float = typer.Option(30.0, "--ndi-fps", help="Frames per second (1..240); frames the generator "
                                                          "cannot make in time are dropped and counted."),
    ndi_size: Optional[str] = typer.Option(None, "--ndi-size",
                                           help="WIDTHxHEIGHT of each source (even, 16..4096; default: the "
                                                "generator's resolution)."),
    ndi_ips: Optional[str] = typer.Option(None, "--ndi-ips",
                                          help="Comma-separated IPs where an NDI finder looks without mDNS: live "
                                               "checks at start that its sources are listed there (a receiver "
                                               "on such a network needs the same IPs in its NDI settings)."),
    ndi_device: str = typer.Option("auto", "--ndi-device", help="Where the frames' generator runs: auto, cpu, "
                                                                "cuda or cuda:N (CUDA with float16 autocast)."),
    realtime: bool = typer.Option(False, "--realtime",
                                  help="Ask for real-time scheduling (Linux SCHED_FIFO; needs root or "
                                       "rtprio) so a busy machine does not delay the sends."),
):
    """Stream beat, per-part onsets, envelopes and latents over OSC to TouchDesigner, in time."""
    from breakgan.console import info, warn
    from breakgan.live.clock import InternalClock, LinkClock, check_tempo
    from breakgan.live.osc_in import ControlListener
    from breakgan.live.osc_out import OscSender
    from breakgan.live.player import LiveOptions, Player, Regenerator
    from breakgan.parts import parse_parts
    from breakgan.timeline import timeline_from_drums
    from breakgan.trajectory import Motion

    from breakgan.seeds import MAX_KEYFRAMES, check_seed

    if keys > MAX_KEYFRAMES:
        raise BreakganError(f"--keys: keyframes per part must be 1..{MAX_KEYFRAMES}, got {keys}")
    if seed is not None:
        seed = check_seed(seed, "--seed")
    keyframe_seed = check_seed(_first(keyframe_seed, seed, 0), "--keyframe-seed")
    motion_seed = check_seed(_first(motion_seed, seed, 0), "--motion-seed")
    pattern_seed = check_seed(_first(pattern_seed, seed, 0), "--pattern-seed")
    if humanize != 0.0:  # drums' own check, imported only when there is a value to check: it loads torch
        from breakgan.drums.groove.apply import check_amount

        humanize = check_amount(humanize)
    motion = Motion(attack_ms=attack_ms, release_ms=release_ms, step=step, pulse=pulse, pulse_ms=pulse_ms,
                    drift=drift, drift_period_s=drift_period, seed=motion_seed)
    if favourites is not None:
        need_file(favourites, "favourites file")
    timeline = timeline_from_drums(drums, candidate, playable=True)
    if drums_model is not None:
        # Loaded now, not at the first /breakgan/regenerate, where a bad file could only be a warning
        # in the middle of a show; the loader caches it for that message.
        from breakgan.drums.run import runtime_model

        runtime_model(drums_model)
    bpm = check_tempo(tempo if tempo is not None else (timeline.tempo or 120.0),
                      "--tempo" if tempo is not None else f"{timeline.source.get('onsets', drums)}: tempo (give --tempo)")
    part_names = parse_parts(parts)
    transports = tuple(t for t, on in (("ndi", ndi), ("spout", spout), ("syphon", syphon)) if on)
    frame_cfg = None
    if transports:
        frame_cfg = _frame_config(generator, transports, part_names, ndi_layout, ndi_part, ndi_fps, ndi_size,
                                  ndi_ips, ndi_device)
    else:  # unused, but a bad value is still a mistake worth one line
        from breakgan.render.options import check_fps, parse_size

        check_fps(ndi_fps, "--ndi-fps")
        if ndi_size is not None:
            parse_size(ndi_size, option="--ndi-size")
    preview = None
    if preview_port is not None:
        if generator is None:
            raise BreakganError("--preview-port needs --generator (the GAN whose frames to show)")
        from breakgan.live.preview import Preview

        preview = Preview(generator, port=preview_port, device=preview_device, fps=preview_fps)
        latent_size = preview.latent_size
        info(f"live: preview of each part's frames at {preview.url}")
    elif generator is not None and frame_cfg is None:
        from breakgan.gan import load_generator

        _, ginfo = load_generator(generator)
        latent_size = int(ginfo["latent_size"])
    frames = None
    if frame_cfg is not None:
        from breakgan.live.frames import LiveFrames

        try:
            frames = LiveFrames(frame_cfg)
        except BaseException:
            if preview:
                preview.close()
            raise
        latent_size = frames.latent_size
        names = ", ".join(f"'{source_name(s)}'" for s in frame_cfg.plan.streams)
        w, h = frame_cfg.plan.part_size
        info(f"live: {'/'.join(transports).upper()} {names} at {frame_cfg.fps:g} fps, {w}x{h}, generator on "
             f"{frames.device} ({frames.warm_s * 1e3:.1f} ms per frame)")
        if frames.visible is not None:
            missing = [source_name(s) for s in frame_cfg.plan.streams if s not in frames.visible]
            (warn if missing else info)(
                f"live: an NDI finder on {','.join(frame_cfg.ips)} lists {len(frames.visible)} of the "
                f"{len(frame_cfg.plan.streams)} sources" + (f" (missing {', '.join(missing)})" if missing else ""))
    try:
        if latent_dims is None:
            latent_dims = min(8, latent_size)  # a default the user did not ask for is not an error
        elif latent_dims > latent_size:
            size_from = f"the generator {generator}" if generator is not None else "--latent-size"
            raise BreakganError(f"--latent-dims {latent_dims}: more than the latent size {latent_size} "
                                f"(of {size_from})")
        options = LiveOptions(
            rate=rate, lookahead_s=lookahead / 1000.0, parts=part_names, latent_dims=latent_dims,
            latent_vector=latent_vector, latent_size=latent_size, keys=keys, keyframe_seed=keyframe_seed,
            pattern_seed=pattern_seed, motion=motion, bars=bars, spin_s=spin_ms / 1000.0, temperature=temperature,
            humanize=humanize)
        fav = _read_favourites(favourites, latent_size)
    except BaseException:
        for worker in (preview, frames):
            if worker:
                worker.close()
        raise

    try:
        clock = LinkClock(bpm, timeline.beats_per_bar) if link else InternalClock(bpm)
        try:
            sender = OscSender(host, port)
        except OSError as e:
            clock.close()
            raise BreakganError(f"cannot send OSC to {host}:{port}: {e}") from e
    except BaseException:
        for worker in (preview, frames):
            if worker:
                worker.close()
        raise
    listener = ControlListener(listen, listen_host).start() if listen is not None else None
    player = Player(timeline, clock, sender.send, options, controls=listener.controls if listener else None,
                    regenerator=Regenerator.default(drums_model), preview=preview, frames=frames, favourites=fav)
    if threading.current_thread() is threading.main_thread():
        # `kill` ends it as cleanly as Ctrl-C does (zeroed values sent).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    where = f"OSC to {host}:{port}" + (f", control on {listener.host}:{listener.port}" if listener else "")
    if realtime:
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
        frame_stats = frames.close() if frames else None
        sender.close()
        clock.close()
    late = stats["onset_lateness"]
    if late.get("count"):
        info(f"live: {stats['bundles']} bundles sent; onset lateness p50 {late['p50_ms']:.3f} ms, "
             f"p99 {late['p99_ms']:.3f} ms")
    else:
        info(f"live: {stats['bundles']} bundles sent")
    if frame_stats is not None:
        f = frame_stats
        (warn if f["dropped"] else info)(
            f"live: {f['sent']} frames sent, {f['dropped']} dropped ({f['behind']} could not be generated in "
            f"time, {f['late']} finished late); generator {f['generate_ms']:.1f} ms per frame")


def _first(*values):
    return next(v for v in values if v is not None)


def _read_favourites(path, latent_size: int):
    """The --favourites keyframes (render's loader, so the same file gives the same keys), or None."""
    if path is None:
        return None
    from breakgan.render.keys import read_favourites

    return read_favourites(path, latent_size)


def _frame_config(generator, transports, parts, layout, part, fps, size, ips, device):
    """The checked --ndi/--spout/--syphon options as a FrameConfig (one clean error per bad option)."""
    from breakgan.device import check_device_name
    from breakgan.live.frames import FrameConfig, plan_streams
    from breakgan.live.sinks import check_transport, ndi_available, parse_ips
    from breakgan.parts import PARTS
    from breakgan.render.options import check_fps, parse_size

    flag = "--" + transports[0]
    if generator is None:
        raise BreakganError(f"{flag} needs --generator (the GAN whose frames to send)")
    for t in transports:
        check_transport(t)
    if "ndi" in transports and not ndi_available():
        raise BreakganError("--ndi needs the ndi-python package (it bundles the NDI runtime): "
                            "pip install 'breakgan[ndi]'")
    fps = check_fps(fps, "--ndi-fps")
    check_device_name(device, "--ndi-device")
    ip_list = parse_ips(ips)
    if ip_list and "ndi" not in transports:
        raise BreakganError("--ndi-ips is for NDI: add --ndi")
    if part is not None and part not in PARTS:
        raise BreakganError(f"--ndi-part must be one of {' '.join(PARTS)}, got {part!r:.60}")
    if size is None:
        from breakgan.gan import load_generator

        res = int(load_generator(generator)[1]["resolution"])
        wh = (max(res, 16), max(res, 16))
    else:
        wh = parse_size(size, "--ndi-size")
    plan = plan_streams(parts, layout, wh, part)
    return FrameConfig(str(generator), plan, fps, transports, device, ip_list)
