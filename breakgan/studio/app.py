"""The studio's HTTP routes (FastAPI). The page sends ids (seeds, list and blend names, candidate and
take numbers), each checked by a strict pattern; the server maps an id to a file inside the run's
studio folder, the drums folder or the renders folder, and serves nothing else."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from pathlib import Path
from typing import Optional

import numpy as np
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from breakgan.errors import BreakganError
from breakgan.parts import PARTS
from breakgan.seeds import MAX_KEYFRAMES, SEED_LIMIT, check_truncation
from breakgan.studio.drums import Drums, inside
from breakgan.studio.drums_job import Regenerations
from breakgan.studio.engine import Engine
from breakgan.studio.jobs import TAKE_RE, Renders, check_renders_folder
from breakgan.studio.latents import blend_latents, morph_fractions, morph_path
from breakgan.studio.live_job import Live
from breakgan.studio.store import NAME_RE, Store, check_name

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_BATCH = 64
MAX_SEED = SEED_LIMIT - 1

Seed = Field(ge=0, le=MAX_SEED)


class _In(BaseModel):
    # strict: JSON true is not the number 1 and "3" is not 3 (lax pydantic would take both)
    model_config = ConfigDict(strict=True)


class Fav(_In):
    seed: int = Seed
    truncation: Optional[float] = None


class BatchIn(_In):
    count: int = Field(16, ge=1, le=MAX_BATCH)
    start: Optional[int] = Field(None, ge=0, le=MAX_SEED - MAX_BATCH)
    truncation: Optional[float] = None


class MorphIn(_In):
    a: Fav
    b: Fav
    attack_ms: float = Field(60.0, ge=0, le=4000)
    release_ms: float = Field(400.0, ge=0, le=4000)
    fps: float = Field(30.0, gt=0, le=60)


class ClassMorphIn(_In):
    seed: Fav  # the one latent the class moves under
    a: int = Field(ge=0)  # class indices into info["labels"]
    b: int = Field(ge=0)
    attack_ms: float = Field(60.0, ge=0, le=4000)
    release_ms: float = Field(400.0, ge=0, le=4000)
    fps: float = Field(30.0, gt=0, le=60)


class RegenerateIn(_In):
    temperature: float  # 0..2, checked by drums_job.check_temperature (finite too)
    seed: int  # the pattern seed, checked by seeds.check_seed
    candidate: int = Field(1, ge=1, le=999)  # whose pattern.mid seeds it when the folder records no seed


class BlendIn(_In):
    items: list[Fav] = Field(min_length=2, max_length=4)
    weights: list[float] = Field(min_length=2, max_length=4)
    name: Optional[str] = None


class ListIn(_In):
    items: list[Fav] = Field(max_length=256)


class PartIn(_In):
    seeds: list[int] = Field(max_length=MAX_KEYFRAMES)


class RenderIn(_In):
    source: str = "parts"  # parts | list | blends
    list: Optional[str] = None
    candidate: int = Field(1, ge=1, le=999)
    preview: bool = True
    attack_ms: float = Field(60.0, ge=0, le=4000)
    release_ms: float = Field(400.0, ge=0, le=4000)


class LiveIn(_In):
    source: str = "parts"  # parts | list | blends: the keyframes, as for render
    list: Optional[str] = None
    candidate: int = Field(1, ge=1, le=999)
    osc_host: str = "127.0.0.1"  # where TouchDesigner's OSC In listens
    osc_port: int = Field(7000, ge=1, le=65535)
    preview: bool = True  # live's MJPEG preview, shown in the page
    attack_ms: float = Field(60.0, ge=0, le=4000)
    release_ms: float = Field(400.0, ge=0, le=4000)


def _osc_host(host: str) -> str:
    """An IP address (never a name to resolve, never options): where live sends OSC."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise BreakganError(f"osc_host {host[:60]!r}: give an IP address such as 127.0.0.1") from None


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


MAX_BODY = 1 << 20  # the largest request the page sends (256 favourites) is a few kB


class BodyLimit:
    """ASGI middleware: a request body over MAX_BODY gets 413 before it is held in memory (FastAPI would
    read and parse all of it before any field's own limit is checked)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return await self._refuse(send)
        seen, refused = 0, False

        async def counted():  # a chunked body says no length up front: counted as it arrives
            nonlocal seen, refused
            message = {"type": "http.disconnect"} if refused else await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY and not refused:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}  # the endpoint stops reading; its answer is dropped
            return message

        async def unless_refused(message):
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not refused:  # the endpoint's reaction to the cut-off body; the client has its 413
                raise

    @staticmethod
    async def _refuse(send) -> None:
        body = json.dumps({"detail": f"request body over {MAX_BODY // 1024} kB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="not found")


def create_app(run: str | Path, studio_dir: str | Path, *, drums: str | Path | None = None,
               renders: str | Path = "renders/studio", device: str = "auto", generator=None) -> FastAPI:
    """The studio for generator RUN; favourites etc. in studio_dir. `generator` may pass a loaded (G, info)."""
    # The cheap checks first: a bad --drums or --renders is one line before the generator loads.
    drum_set = Drums(drums).check() if drums is not None else None
    check_renders_folder(renders)
    engine = Engine(generator if generator is not None else run, device=device)
    store = Store(studio_dir, engine.latent)
    takes = Renders(renders)
    regen = Regenerations(renders)
    live = Live()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        live.stop()
        takes.stop_all()
        regen.stop()
        engine.close()

    app = FastAPI(title="breakgan studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit)
    app.state.engine, app.state.store, app.state.renders, app.state.live = engine, store, takes, live
    app.state.drums = drum_set  # regenerate replaces it
    app.state.regenerations = regen

    def current_drums() -> Drums | None:
        return app.state.drums

    async def work(fn, *args, **kwargs):
        return await asyncio.wrap_future(engine.submit(fn, *args, **kwargs))

    @app.exception_handler(BreakganError)
    async def _user_error(request: Request, exc: BreakganError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse({"error": where[:500]}, status_code=400)

    # --- the page ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    @app.get("/static/{name}")
    def static(name: str):
        if name not in STATIC_FILES:
            raise _not_found()
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name])

    @app.get("/api/info")
    def info():
        drum_set = current_drums()
        return {
            "run": Path(run).name, "resolution": engine.resolution, "latent_size": engine.latent_size,
            "device": str(engine.device), "parts": list(PARTS), "lists": store.list_names(),
            "assigned": store.parts(), "blends": store.blend_names(), "next_seed": store.next_seed(),
            "drums": [drum_set.describe(n) for n in drum_set.numbers()] if drum_set else [],
            "takes": takes.takes(), "drums_folder": drum_set.folder.name if drum_set else None,
            "classes": engine.classes,
        }

    # --- 1. endless sampling --------------------------------------------------------------------
    @app.post("/api/batch")
    async def batch(req: BatchIn = Body(default_factory=BatchIn)):
        t = check_truncation(req.truncation)
        start = store.next_seed() if req.start is None else req.start
        seeds = list(range(start, start + req.count))
        await work(engine.seed_pngs, seeds, t)
        if req.start is None:
            store.set_next_seed(start + req.count)
        return {"seeds": seeds, "truncation": t,
                "urls": [f"/img/seed/{s}.png" + (f"?t={t:g}" if t is not None else "") for s in seeds]}

    @app.get("/img/seed/{seed}.png")
    async def seed_image(seed: int, t: Optional[float] = None):
        if not 0 <= seed <= MAX_SEED:
            raise _not_found()
        t = check_truncation(t)
        data = engine.cached(("seed", seed, t))
        if data is None:
            data = (await work(engine.seed_pngs, [seed], t))[0]
        return _png(data)

    # --- 2. favourites --------------------------------------------------------------------------
    @app.get("/api/favourites/{name}")
    def favourites(name: str):
        return {"name": check_name(name), "items": store.favourites(name)}

    @app.post("/api/favourites/{name}/add")
    def favourite_add(name: str, fav: Fav):
        return {"name": name, "items": store.add(name, fav.seed, fav.truncation)}

    @app.post("/api/favourites/{name}/remove")
    def favourite_remove(name: str, fav: Fav):
        return {"name": name, "items": store.remove(name, fav.seed)}

    @app.put("/api/favourites/{name}")
    def favourite_set(name: str, body: ListIn):
        return {"name": name, "items": store.set_list(name, [f.model_dump() for f in body.items])}

    @app.post("/api/undo")
    def undo():
        name = store.undo()
        return {"name": name, "items": store.favourites(name) if name and name in store.list_names() else [],
                "lists": store.list_names()}

    # --- 3. morph preview -----------------------------------------------------------------------
    @app.post("/api/morph")
    async def morph(req: MorphIn):
        a = engine.latent(req.a.seed, check_truncation(req.a.truncation))
        b = engine.latent(req.b.seed, check_truncation(req.b.truncation))
        fwd = morph_path(a, b, req.attack_ms, req.release_ms, req.fps)
        back = morph_path(b, a, req.attack_ms, req.release_ms, req.fps)
        pngs = await work(engine.latent_pngs, np.concatenate([fwd, back]))
        return {"fps": req.fps, "forward": [_data_url(p) for p in pngs[:len(fwd)]],
                "back": [_data_url(p) for p in pngs[len(fwd):]]}

    @app.post("/api/morph/class")
    async def morph_class(req: ClassMorphIn):
        """One latent, its class embedding moving from class a to class b (conditional generators only)."""
        if not engine.classes:
            raise BreakganError("this generator is not conditional: it has no classes to morph between")
        for k in (req.a, req.b):
            if k >= len(engine.classes):
                raise BreakganError(f"class {k}: this generator has classes 0..{len(engine.classes) - 1}")
        z = engine.latent(req.seed.seed, check_truncation(req.seed.truncation))
        fwd = morph_fractions(req.attack_ms, req.release_ms, req.fps)
        pngs = await work(engine.class_pngs, z, req.a, req.b, np.concatenate([fwd, 1.0 - fwd]))
        return {"fps": req.fps, "forward": [_data_url(p) for p in pngs[:len(fwd)]],
                "back": [_data_url(p) for p in pngs[len(fwd):]], "a": engine.classes[req.a],
                "b": engine.classes[req.b]}

    # --- 4. blend -------------------------------------------------------------------------------
    def _blend(req: BlendIn) -> np.ndarray:
        z = np.stack([engine.latent(f.seed, check_truncation(f.truncation)) for f in req.items])
        return blend_latents(z, req.weights)

    @app.post("/api/blend/preview")
    async def blend_preview(req: BlendIn):
        png = (await work(engine.latent_pngs, _blend(req)[None, :]))[0]
        return {"image": _data_url(png)}

    @app.post("/api/blends")
    def blend_save(req: BlendIn):
        name = check_name(req.name or "", "blend")
        z = _blend(req)
        recipe = {"items": [f.model_dump() for f in req.items], "weights": list(req.weights)}
        store.save_blend(name, z, recipe)
        return {"name": name, "blends": store.blend_names(), "url": f"/img/blend/{name}.png"}

    @app.get("/img/blend/{name}.png")
    async def blend_image(name: str):
        if not NAME_RE.fullmatch(name) or name not in store.blend_names():
            raise _not_found()
        z = store.blend_latent(name)
        return _png((await work(engine.latent_pngs, z[None, :]))[0])

    # --- 5. per-part keyframes ------------------------------------------------------------------
    @app.put("/api/parts/{part}")
    def set_part(part: str, body: PartIn):
        if part not in PARTS:
            raise _not_found()
        if any(not 0 <= s <= MAX_SEED for s in body.seeds):
            raise BreakganError("seeds must be whole numbers from 0 to 2**63-1")
        return {"assigned": store.set_part(part, body.seeds)}

    # --- 6. drums -------------------------------------------------------------------------------
    def _drum_file(number: int, what: str) -> FileResponse:
        drum_set = current_drums()
        path = drum_set.file(number, what) if drum_set is not None else None
        if path is None:
            raise _not_found()
        return FileResponse(path)

    @app.get("/drums/{number}/mix.wav")
    def drum_mix(number: int):
        return _drum_file(number, "mix")

    @app.get("/drums/{number}/pianoroll.png")
    def drum_roll(number: int):
        return _drum_file(number, "pianoroll")

    @app.get("/drums/{number}/stems/{part}.wav")
    def drum_stem(number: int, part: str):
        if part not in PARTS:
            raise _not_found()
        return _drum_file(number, part)

    @app.post("/api/drums/regenerate")
    def drums_regenerate(req: RegenerateIn):
        drum_set = current_drums()
        if drum_set is None:
            raise BreakganError("start the studio with --drums DIR to regenerate drums")

        def use(folder: Path) -> None:
            app.state.drums = Drums(folder)

        return regen.start(drum_set, req.candidate, req.temperature, req.seed, use).status()

    @app.get("/api/drums/regenerate")
    def drums_regenerate_status():
        job = regen.job
        return job.status() if job is not None else {"state": "idle"}

    # --- 7. render ------------------------------------------------------------------------------
    def _keyframe_args(source: str, list_name: str | None) -> list[str]:
        """--favourites (and --parts) for render and live: the same keyframes file for both."""
        if source == "parts":
            assigned = store.parts()
            if not assigned:
                raise BreakganError("no part has keyframes yet: assign favourites to parts first")
            return ["--favourites", str(store.folder / "parts.json"), "--parts", ",".join(assigned)]
        if source == "list":
            name = check_name(list_name or "")
            if not store.favourites(name):
                raise BreakganError(f"list {name!r} is empty")
            return ["--favourites", str(store.folder / "favourites" / f"{name}.npy")]
        if source == "blends":
            if not store.blend_names():
                raise BreakganError("no blends saved yet")
            return ["--favourites", str(store.folder / "blends.npy")]
        raise BreakganError(f"source {source[:40]!r}: one of parts, list, blends")

    @app.post("/api/render")
    def render_start(req: RenderIn):
        drum_set = current_drums()
        if drum_set is None:
            raise BreakganError("start the studio with --drums DIR to render")
        args = ["--run", str(run), *drum_set.render_args(req.candidate), "--layout", "tiles",
                "--attack-ms", f"{req.attack_ms:g}", "--release-ms", f"{req.release_ms:g}"]
        args += _keyframe_args(req.source, req.list)
        if req.preview:
            args.append("--preview")
        return takes.start(args).status()

    @app.get("/api/render/{take}")
    def render_status(take: str):
        job = takes.jobs.get(take) if TAKE_RE.fullmatch(take) else None
        if job is None:
            raise _not_found()
        return job.status()

    @app.get("/renders/{take}/render.mp4")
    def render_video(take: str):
        path = inside(takes.folder, takes.folder / take / "render.mp4") if TAKE_RE.fullmatch(take) else None
        if path is None:
            raise _not_found()
        return FileResponse(path, media_type="video/mp4")

    # --- 8. live --------------------------------------------------------------------------------
    @app.post("/api/live")
    def live_start(req: LiveIn):
        drum_set = current_drums()
        if drum_set is None:
            raise BreakganError("start the studio with --drums DIR to play live")
        host = _osc_host(req.osc_host)
        args = [*drum_set.render_args(req.candidate), "--generator", str(run),
                *_keyframe_args(req.source, req.list), "--host", host, "--port", str(req.osc_port),
                "--listen", "0", "--attack-ms", f"{req.attack_ms:g}", "--release-ms", f"{req.release_ms:g}"]
        if req.preview:
            args += ["--preview-port", "0", "--preview-device", "cpu" if engine.device.type == "cpu" else "auto"]
        return live.start(args, (host, req.osc_port)).status()

    @app.get("/api/live")
    def live_status():
        return live.status()

    @app.post("/api/live/stop")
    def live_stop():
        return live.stop()

    return app
