// breakgan studio page: plain JS over the JSON API in breakgan/studio/app.py. The page only ever
// sends ids (seeds, list/blend names, candidate and take numbers), never file paths.
"use strict";
const $ = (id) => document.getElementById(id);
const S = { info: null, list: "favourites", favs: [], selected: [], assigned: {}, shown: [], loading: false,
            morph: null, morphTimer: null, blendTimer: null, job: null, live: null, liveTimer: null };
window.studio = S;  // for the browser test and for curious users

function toast(msg) {
  const t = $("toast"); t.textContent = msg; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}
async function api(method, url, body) {
  const r = await fetch(url, { method, headers: body ? { "Content-Type": "application/json" } : {},
                               body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { const msg = data.error || data.detail || r.statusText; toast(msg); throw new Error(msg); }
  return data;
}
const truncation = () => { const v = parseFloat($("trunc").value); return v >= 3 ? null : v; };
const favKey = (f) => `${f.seed}:${f.truncation}`;
const seedUrl = (seed, t) => `/img/seed/${seed}.png` + (t == null ? "" : `?t=${t}`);
const isFav = (seed, t) => S.favs.some((f) => f.seed === seed && f.truncation === t);

// --- 1. endless sampling ----------------------------------------------------------------------
function tile(seed, t, url) {
  const d = document.createElement("div"); d.className = "tile"; d.dataset.seed = seed;
  const img = document.createElement("img"); img.src = url; img.alt = `seed ${seed}`;
  img.onclick = () => enlarge(seed, t, url);
  const star = document.createElement("button"); star.className = "star"; star.textContent = "★";
  star.title = "keep as favourite"; star.onclick = () => toggleFav(seed, t);
  const label = document.createElement("span"); label.className = "seed";
  label.textContent = t == null ? `${seed}` : `${seed} t${t}`;
  d.append(img, star, label);
  return d;
}
async function loadBatch(start) {
  if (S.loading) return; S.loading = true;
  try {
    const t = truncation();
    const body = { count: 16, truncation: t }; if (start != null) body.start = start;
    const b = await api("POST", "/api/batch", body);
    b.seeds.forEach((s, i) => { $("grid").append(tile(s, b.truncation, b.urls[i])); S.shown.push(s); });
    await Promise.all([...$("grid").querySelectorAll("img")].map((im) => im.complete ? null :
      new Promise((ok) => { im.onload = im.onerror = ok; })));
    markStars();
  } finally { S.loading = false; }
}
async function reloadGrid(first) {
  const n = Math.max(16, S.shown.length); $("grid").innerHTML = ""; S.shown = [];
  for (let k = 0; k < n; k += 16) await loadBatch(first + k);
}
function markStars() {
  for (const d of $("grid").children) {
    const t = truncation();
    d.querySelector(".star").classList.toggle("on", isFav(+d.dataset.seed, t));
  }
}
function enlarge(seed, t, url) {
  $("lightbox-img").src = url;
  $("lightbox-caption").textContent = `seed ${seed}` + (t == null ? "" : `, truncation ${t}`) +
    ` (breakgan sample RUN --seeds ${seed}` + (t == null ? "" : ` --truncation ${t}`) + ")";
  $("lightbox").hidden = false;
}

// --- 2. favourites ----------------------------------------------------------------------------
async function showList(name, items) {
  S.list = name; S.favs = items ?? (await api("GET", `/api/favourites/${name}`)).items;
  S.selected = S.selected.filter((k) => S.favs.some((f) => favKey(f) === k));
  const sel = $("list-select"); const names = new Set([...S.info.lists, name]);
  sel.innerHTML = ""; [...names].sort().forEach((n) => sel.add(new Option(n, n, false, n === name)));
  renderFavs(); markStars(); renderSources();
}
function renderFavs() {
  const box = $("favs"); box.innerHTML = "";
  for (const f of S.favs) {
    const d = document.createElement("div"); d.className = "fav"; d.dataset.seed = f.seed;
    if (S.selected.includes(favKey(f))) d.classList.add("sel");
    const img = document.createElement("img"); img.src = seedUrl(f.seed, f.truncation);
    d.append(img, document.createTextNode(f.truncation == null ? `${f.seed}` : `${f.seed} t${f.truncation}`));
    d.onclick = () => toggleSelect(f);
    box.append(d);
  }
  selectionChanged();
}
async function toggleFav(seed, t) {
  const op = isFav(seed, t) ? "remove" : "add";
  const r = await api("POST", `/api/favourites/${S.list}/${op}`, { seed, truncation: t });
  if (!S.info.lists.includes(S.list)) S.info.lists.push(S.list);
  await showList(S.list, r.items);
}
async function undo() {
  const r = await api("POST", "/api/undo");
  if (!r.name) { toast("nothing to undo"); return; }
  S.info.lists = r.lists; await showList(r.name, r.items);
}
function toggleSelect(f) {
  const k = favKey(f); const i = S.selected.indexOf(k);
  if (i >= 0) S.selected.splice(i, 1); else S.selected.push(k);
  renderFavs();
}
const selectedFavs = () => S.selected.map((k) => S.favs.find((f) => favKey(f) === k)).filter(Boolean);
function selectionChanged() {
  const sel = selectedFavs();
  if (sel.length === 2) startMorph(sel[0], sel[1]); else stopMorph();
  renderBlend(sel);
}

// --- 3. morph preview: one hit A -> B, then one hit B -> A, with render's attack/release ----------
function stopMorph() {
  clearTimeout(S.morphTimer); S.morph = null; $("keep-pair").disabled = true;
  $("morph-img").removeAttribute("src"); $("morph-label").textContent = "select two favourites";
}
async function startMorph(a, b) {
  clearTimeout(S.morphTimer);
  const body = { a, b, attack_ms: +$("attack").value, release_ms: +$("release").value, fps: 30 };
  const m = await api("POST", "/api/morph", body);
  S.morph = { a, b, ...m, shown: 0 }; $("keep-pair").disabled = false;
  $("morph-label").textContent = `${a.seed} → ${b.seed} (${m.forward.length} frames per hit)`;
  animateMorph(m);
}
// conditional generators: one favourite's latent, its class embedding moving from class A to class B
async function startClassMorph() {
  const f = selectedFavs()[0];
  if (!f) { toast("select a favourite first"); return; }
  clearTimeout(S.morphTimer);
  const body = { seed: f, a: +$("class-a").value, b: +$("class-b").value, attack_ms: +$("attack").value,
                 release_ms: +$("release").value, fps: 30 };
  const m = await api("POST", "/api/morph/class", body);
  S.morph = { a: null, b: null, ...m, classMorph: true, shown: 0 }; $("keep-pair").disabled = true;
  $("morph-label").textContent = `seed ${f.seed}: class ${m.a} → ${m.b}`;
  animateMorph(m);
}
function animateMorph(m) {
  const seq = [[m.forward[0], 500], ...m.forward.map((f) => [f, 1000 / m.fps]), [m.back[0], 500],
               ...m.back.map((f) => [f, 1000 / m.fps])];
  let i = 0;
  const step = () => {
    if (!S.morph || S.morph.forward !== m.forward) return;
    const [src, ms] = seq[i % seq.length]; $("morph-img").src = src; S.morph.shown++; i++;
    S.morphTimer = setTimeout(step, ms);
  };
  step();
}
async function keepPair() {
  const { a, b } = S.morph; const name = `pair-${a.seed}-${b.seed}`;
  await api("PUT", `/api/favourites/${name}`, { items: [a, b] });
  if (!S.info.lists.includes(name)) S.info.lists.push(name);
  renderSources(); toast(`kept list ${name}`);
}

// --- 4. blend -----------------------------------------------------------------------------------
function renderBlend(sel) {
  const box = $("blend-weights"); box.innerHTML = "";
  $("save-blend").disabled = !(sel.length >= 2 && sel.length <= 4);
  if ($("save-blend").disabled) {
    box.innerHTML = '<span class="hint">select 2 to 4 favourites</span>'; $("blend-img").removeAttribute("src"); return;
  }
  sel.forEach((f) => {
    const l = document.createElement("label"); l.className = "row";
    l.innerHTML = `<img src="${seedUrl(f.seed, f.truncation)}" width="32"> ${f.seed} `;
    const r = document.createElement("input"); r.type = "range"; r.min = 0; r.max = 1; r.step = 0.05; r.value = 0.5;
    r.className = "weight"; r.oninput = () => { clearTimeout(S.blendTimer); S.blendTimer = setTimeout(previewBlend, 150); };
    l.append(r); box.append(l);
  });
  previewBlend();
}
function blendBody() {
  return { items: selectedFavs(), weights: [...document.querySelectorAll("#blend-weights .weight")].map((r) => +r.value) };
}
async function previewBlend() { $("blend-img").src = (await api("POST", "/api/blend/preview", blendBody())).image; }
async function saveBlend() {
  const name = $("blend-name").value.trim() || `blend-${selectedFavs().map((f) => f.seed).join("-")}`;
  const r = await api("POST", "/api/blends", { ...blendBody(), name });
  S.info.blends = r.blends; renderBlends(); renderSources(); toast(`saved blend ${name}`);
}
function renderBlends() {
  const box = $("blends"); box.innerHTML = "";
  for (const n of S.info.blends) {
    const d = document.createElement("div"); d.className = "fav";
    d.innerHTML = `<img src="/img/blend/${n}.png?v=${Date.now()}">`; d.append(document.createTextNode(n)); box.append(d);
  }
}

// --- 5. keyframes per part --------------------------------------------------------------------
function renderParts() {
  const box = $("parts"); box.innerHTML = "";
  for (const p of S.info.parts) {
    const row = document.createElement("div"); row.className = "part"; row.dataset.part = p;
    row.innerHTML = `<span class="name">${p}</span>`;
    for (const s of S.assigned[p] || []) { const im = document.createElement("img"); im.src = seedUrl(s, null); im.title = s; row.append(im); }
    const set = document.createElement("button"); set.textContent = "set"; set.className = "assign";
    set.title = "use the selected favourites as this part's keyframes"; set.onclick = () => assign(p);
    const clr = document.createElement("button"); clr.textContent = "clear"; clr.onclick = () => assign(p, true);
    row.append(set, clr); box.append(row);
  }
}
async function assign(part, clear) {
  const sel = selectedFavs();
  if (!clear && !sel.length) { toast("select favourites first"); return; }
  if (!clear && sel.some((f) => f.truncation != null))
    toast("per-part keyframes are seeds: render draws them without truncation");
  S.assigned = (await api("PUT", `/api/parts/${part}`, { seeds: clear ? [] : sel.map((f) => f.seed) })).assigned;
  renderParts();
}

// --- 6. drums -----------------------------------------------------------------------------------
function renderDrums() {
  const box = $("drums"); box.innerHTML = ""; const cs = $("render-cand"); cs.innerHTML = "";
  $("regen-row").hidden = !S.info.drums.length; $("drums-folder").textContent = S.info.drums_folder ?? "";
  if (!S.info.drums.length) { box.innerHTML = '<span class="hint">start with --drums DIR to audition and render</span>'; }
  for (const c of S.info.drums) {
    cs.add(new Option(c.name, c.number));
    const d = document.createElement("div"); d.className = "cand";
    d.innerHTML = `<div class="row"><b>${c.name}</b> ${c.tempo ?? "?"} BPM, ${c.bars ?? "?"} bars</div>`;
    if (c.has_pianoroll) d.innerHTML += `<img src="/drums/${c.number}/pianoroll.png" alt="piano roll">`;
    if (c.has_mix) d.innerHTML += `<div class="row">mix <audio controls preload="none" src="/drums/${c.number}/mix.wav"></audio></div>`;
    const stems = document.createElement("div"); stems.className = "stems";
    for (const p of c.stems.filter((p) => c.parts.includes(p))) {
      const b = document.createElement("button"); b.textContent = `▶ ${p}`;
      b.onclick = () => new Audio(`/drums/${c.number}/stems/${p}.wav`).play();
      stems.append(b);
    }
    d.append(stems); box.append(d);
  }
}

// regenerate: `breakgan drums` at another temperature in the background; its folder becomes the drums
async function startRegenerate() {
  const body = { temperature: +$("regen-temp").value, seed: +$("regen-seed").value,
                 candidate: +$("render-cand").value || 1 };
  $("regen-btn").disabled = true;
  try { S.regen = await api("POST", "/api/drums/regenerate", body); pollRegenerate(); }
  catch (e) { $("regen-btn").disabled = false; }
}
async function pollRegenerate() {
  const j = S.regen = await api("GET", "/api/drums/regenerate");
  const bar = $("regen-progress"); bar.hidden = false; bar.max = j.total || 1; bar.value = j.done;
  $("regen-status").textContent = `${j.folder}: ${j.state} ${j.done}/${j.total || "?"}, ${j.seconds} s`;
  if (j.state === "running") { setTimeout(pollRegenerate, 400); return; }
  $("regen-btn").disabled = false;
  if (j.state === "failed") { toast(j.error); $("regen-status").textContent += ` — ${j.error}`; return; }
  S.info = { ...S.info, ...(await api("GET", "/api/info")) }; renderDrums();
}

// --- 7. render ----------------------------------------------------------------------------------
function renderSources() {
  const s = $("render-source"); const keep = s.value; s.innerHTML = "";
  s.add(new Option("keyframes per part", "parts"));
  for (const n of S.info.lists) s.add(new Option(`list ${n}`, `list:${n}`));
  if (S.info.blends.length) s.add(new Option("blends", "blends"));
  if ([...s.options].some((o) => o.value === keep)) s.value = keep;
  liveSources();
}
async function startRender() {
  const src = $("render-source").value; const body = {
    source: src.startsWith("list:") ? "list" : src, list: src.startsWith("list:") ? src.slice(5) : null,
    candidate: +$("render-cand").value || 1, preview: !$("render-full").checked,
    attack_ms: +$("attack").value, release_ms: +$("release").value };
  $("render-btn").disabled = true;
  try { S.job = await api("POST", "/api/render", body); pollRender(); }
  catch (e) { $("render-btn").disabled = false; }
}
async function pollRender() {
  const j = S.job = await api("GET", `/api/render/${S.job.take}`);
  $("render-progress").max = j.total || 1; $("render-progress").value = j.done;
  $("render-status").textContent = `${j.take}: ${j.state} ${j.done}/${j.total || "?"} frames, ${j.seconds} s`;
  if (j.state === "running") { setTimeout(pollRender, 400); return; }
  $("render-btn").disabled = false;
  if (j.state === "failed") { toast(j.error); $("render-status").textContent += ` — ${j.error}`; return; }
  const v = $("render-video"); v.src = j.video; v.play().catch(() => {});
}

// --- 8. live: `breakgan live` with the same keyframes, in the background --------------------------
function liveSources() {
  const s = $("live-source"); const keep = s.value; s.innerHTML = "";
  for (const o of $("render-source").options) s.add(new Option(o.text, o.value));
  if ([...s.options].some((o) => o.value === keep)) s.value = keep;
}
function showLive(j) {
  S.live = j; const st = $("live-status"); st.dataset.state = j.state;
  const where = j.osc ? ` · OSC to ${j.osc}` + (j.control_port ? ` · control on port ${j.control_port}` : "") : "";
  st.textContent = j.state + (j.state === "running" || j.state === "starting" ? where : "") + (j.error ? ` — ${j.error}` : "");
  const active = j.state === "running" || j.state === "starting";
  $("live-start").disabled = active; $("live-stop").disabled = !active;
  // the MJPEG stream of live's own preview server (it listens on 127.0.0.1 only)
  const img = $("live-preview"); const want = active && j.preview ? j.preview + "stream" : null;
  if (want && img.getAttribute("src") !== want) img.src = want;
  if (!want && img.hasAttribute("src")) img.removeAttribute("src");
  clearTimeout(S.liveTimer);
  if (active) S.liveTimer = setTimeout(async () => showLive(await api("GET", "/api/live")), 700);
}
async function startLive() {
  const src = $("live-source").value;
  const body = { source: src.startsWith("list:") ? "list" : src, list: src.startsWith("list:") ? src.slice(5) : null,
                 candidate: +$("render-cand").value || 1, osc_port: +$("live-port").value,
                 preview: $("live-preview-on").checked, attack_ms: +$("attack").value, release_ms: +$("release").value };
  $("live-start").disabled = true;
  try { showLive(await api("POST", "/api/live", body)); } catch (e) { $("live-start").disabled = false; }
}
async function stopLive() {
  $("live-stop").disabled = true; clearTimeout(S.liveTimer);
  showLive(await api("POST", "/api/live/stop"));
}

// --- start ----------------------------------------------------------------------------------------
async function init() {
  S.info = await api("GET", "/api/info"); S.assigned = S.info.assigned;
  $("run-info").textContent = `${S.info.run} · ${S.info.resolution} px · ${S.info.device}`;
  $("trunc").oninput = () => { const t = truncation(); $("trunc-out").textContent = t == null ? "off" : t; };
  $("trunc").onchange = () => reloadGrid(S.shown.length ? S.shown[0] : 0);
  $("more").onclick = () => loadBatch();
  $("jump").onclick = () => { const v = parseInt($("jump-seed").value, 10); if (v >= 0) { S.shown = []; reloadGrid(v); } };
  $("lightbox").onclick = () => { $("lightbox").hidden = true; };
  $("list-select").onchange = () => showList($("list-select").value);
  $("new-list-btn").onclick = () => { const n = $("new-list").value.trim(); if (n) showList(n, []); };
  $("undo").onclick = undo;
  $("keep-pair").onclick = keepPair;
  $("attack").onchange = $("release").onchange = selectionChanged;
  $("save-blend").onclick = saveBlend;
  $("render-btn").onclick = startRender;
  $("regen-btn").onclick = startRegenerate;
  $("regen-temp").oninput = () => { $("regen-temp-out").textContent = $("regen-temp").value; };
  $("class-morph").onclick = startClassMorph;
  $("class-row").hidden = !S.info.classes.length;
  S.info.classes.forEach((c, i) => { $("class-a").add(new Option(c, i)); $("class-b").add(new Option(c, i, false, i === 1)); });
  $("live-start").onclick = startLive;
  $("live-stop").onclick = stopLive;
  await showList(S.info.lists.includes("favourites") || !S.info.lists.length ? "favourites" : S.info.lists[0]);
  renderBlends(); renderParts(); renderDrums(); liveSources();
  showLive(await api("GET", "/api/live"));
  await loadBatch();
  new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting) && S.shown.length) loadBatch(); })
    .observe($("sentinel"));
  document.body.dataset.ready = "1";
}
init();
