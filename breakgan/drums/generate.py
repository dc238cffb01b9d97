"""Fast DrumsRNN generation: sampling with temperature and Magenta-style beam search.

The trained parameters (TF layout) are folded once into run-time weights so one step is a handful of
in-place ops on pre-allocated buffers:
- the linear input projection is folded into the first LSTM kernel, and the one-hot event part of it
  becomes a (512, 4H) table lookup;
- all recurrent state lives in one row per sequence, S = [counter | attention | h0 | h1 | h2 | c0 | c1 | c2],
  so every layer reads one contiguous slice ([counter, attention, h0], [h0, h1], [h1, h2]) and the
  attention query reads [h0 h1 h2 c0 c1 c2] with its weight rows permuted to match;
- the j gate columns are pre-scaled by 2 and the forget bias (+1) folded into the bias, so one sigmoid
  gives all four gates (tanh(x) = 2 sigmoid(2x) - 1);
- the attention's stored outputs and their keys are ring buffers (the softmax over slots does not
  depend on slot order): each output is computed straight into its slot, and one product writes its
  logits and key into their slot of a second ring; the attention is written by bmm straight into S;
- the attention scores v.tanh(k + q) are computed as v'.sigmoid(k' + q') with k' = -2k, q' = -2q and
  v' = -2v (tanh(x) = 1 - 2 sigmoid(-2x), and the softmax over slots ignores the constant sum(v)): torch's
  CPU tanh costs three times its sigmoid, ~30 us of a step for the (32, 256) scores;
- on CPU the matrix products go through numpy's BLAS (OpenBLAS in numpy's wheels), one thread: torch's
  MKL matrix-vector product reads the weights at ~26 GB/s on an AMD EPYC where OpenBLAS reaches ~45
  GB/s, and a numpy call costs less than a torch op, so a batch-1 step takes 20-35% less time;
- sampling is Gumbel-max on noise drawn up front, so no per-step Python objects or host syncs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from breakgan.drums.encoding import COUNTER_BITS, NUM_CLASSES, NUM_PARTS, counter_bits
from breakgan.drums.model import FORGET_BIAS, DrumsRNN


@dataclass
class BeamOptions:
    beam_size: int = 1
    branch_factor: int = 1
    steps_per_iteration: int = 1


# ---- decoding that keeps the primer's groove ----------------------------------------------------------
# Free-running, DrumsRNN drifts away from its primer within ~4 bars (it was trained on 64-step chunks)
# and can fall into snare rolls. Without retraining, the sampler is steered instead: the model's
# next-step distribution is mixed with the primer's distribution at the same position in the bar, then
# parts that already reached their per-bar cap are masked out, then the nucleus (top-p) is kept.

MAX_SNARE_PER_BAR = 11  # a bar of 12+ snare hits is a roll: never sampled
CAPPED_PARTS = (1, 4, 5, 6, 7)  # snare, toms, crash: the parts that collapse into rolls; timekeepers are free
CAP_FLOOR = 4  # a part the primer hardly plays may still take this many hits per bar
TIMEKEEPERS = (2, 3, 8)  # closed hat, open hat, ride


@dataclass(frozen=True)
class Decoding:
    """Sampler settings. The defaults are the shipped ones (tuned on the GMD train split)."""
    groove_keep: float = 0.5  # 0..1: weight of the primer's per-position distribution (0 = the bare model)
    top_p: float = 0.95  # nucleus sampling: keep the smallest set of events holding this probability
    density_cap: float = 1.5  # per-bar hits of snare/toms/crash <= this x the primer's busiest bar (0 = off)
    keep_time: bool = True  # a primer with hats/ride in most bars: no generated bar goes without them

    @property
    def plain(self) -> bool:
        return self.groove_keep == 0 and self.top_p >= 1 and self.density_cap == 0 and not self.keep_time


PLAIN = Decoding(0.0, 1.0, 0.0, False)  # Magenta's sampler: the model's distribution as it is
MAX_DENSITY_CAP = 16.0


def make_decoding(groove_keep=Decoding.groove_keep, top_p=Decoding.top_p,
                  density_cap=Decoding.density_cap) -> Decoding:
    """Decoding from option values, each checked (finite, in range) and named in the error.
    density_cap 0 turns both guards off (the per-bar cap and the timekeeper rule)."""
    from breakgan.drums.options import check_float

    keep = check_float(groove_keep, "--groove-keep", 0.0, 1.0)
    top_p = check_float(top_p, "--top-p", 0.0, 1.0, above=True)
    cap = check_float(density_cap, "--density-cap", 0.0, MAX_DENSITY_CAP)
    return Decoding(keep, top_p, cap, cap > 0)


@functools.lru_cache(maxsize=1)
def class_parts() -> np.ndarray:
    """(512, 9) bool: the parts each event class hits."""
    return ((np.arange(NUM_CLASSES)[:, None] >> np.arange(NUM_PARTS)) & 1).astype(bool)


def primer_step_distribution(primer: np.ndarray, steps_per_bar: int) -> tuple[np.ndarray, np.ndarray]:
    """Primer labels -> ((steps_per_bar, 512) event distribution at each position of the bar, (steps_per_bar,)
    bool: positions the primer covers). Positions are counted from the primer's first step (a bar line)."""
    primer = np.asarray(primer, dtype=np.int64)
    dist = np.zeros((steps_per_bar, NUM_CLASSES))
    np.add.at(dist, (np.arange(len(primer)) % steps_per_bar, primer), 1.0)
    n = dist.sum(1, keepdims=True)
    return np.divide(dist, n, out=np.zeros_like(dist), where=n > 0), n[:, 0] > 0


def density_caps(primer: np.ndarray, steps_per_bar: int, ratio: float) -> np.ndarray:
    """(9,) most hits per bar of each part: ratio x the primer's busiest bar, at least CAP_FLOOR, snare at
    most MAX_SNARE_PER_BAR; parts not capped get steps_per_bar (no limit). ratio 0 = only the snare rule."""
    caps = np.full(NUM_PARTS, steps_per_bar, np.int64)
    if ratio > 0:
        hits = class_parts()[np.asarray(primer, dtype=np.int64)]
        bars = -(-len(hits) // steps_per_bar)
        padded = np.zeros((bars * steps_per_bar, NUM_PARTS), bool)
        padded[:len(hits)] = hits
        busiest = padded.reshape(bars, steps_per_bar, NUM_PARTS).sum(1).max(0)
        for k in CAPPED_PARTS:
            caps[k] = max(CAP_FLOOR, int(np.ceil(ratio * busiest[k])))
    caps[1] = min(caps[1], MAX_SNARE_PER_BAR)
    return caps


def time_positions(primer: np.ndarray, steps_per_bar: int, min_share: float = 0.5) -> np.ndarray | None:
    """Where a generated bar still without a hat or ride hit must get one: (steps_per_bar,) bool, or None
    when the primer's drummer does not keep time (fewer than `min_share` of its bars have a hat or ride).

    The positions are those where the primer plays a timekeeper, from the middle of the bar on (or from
    its last timekeeper position, if all of them come earlier), so a forced hit lands where this drummer
    puts one: a ride on beat 4 stays on beat 4, and a bar without hats is only "lost" when the primer
    played them in most of its bars (a one-bar break in a 2-bar primer still counts as keeping time)."""
    tk = class_parts()[np.asarray(primer, dtype=np.int64)][:, TIMEKEEPERS].any(1)
    if not tk.any():
        return None
    bars = -(-len(tk) // steps_per_bar)
    padded = np.zeros(bars * steps_per_bar, bool)
    padded[:len(tk)] = tk
    grid = padded.reshape(bars, steps_per_bar)
    if grid.any(1).mean() < min_share:
        return None
    played = grid.any(0)
    start = min(steps_per_bar // 2, int(np.flatnonzero(played)[-1]))
    played[:start] = False
    return played


def nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """p restricted to its smallest most-likely set holding top_p of the mass (renormalised)."""
    if top_p >= 1:
        return p
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(p[order])
    keep = order[:int(np.searchsorted(cum, top_p * cum[-1])) + 1]
    out = np.zeros_like(p)
    out[keep] = p[keep]
    return out / out.sum()


def guided_distribution(p_model: np.ndarray, position: int, counts: np.ndarray, *, table: np.ndarray,
                        covered: np.ndarray, caps: np.ndarray, decoding: Decoding,
                        need_time: bool = False) -> np.ndarray:
    """One step's sampling distribution: model mixed with the primer at this bar position, parts at their
    cap masked out (the empty event is always allowed), then the nucleus. need_time: the bar reached a
    position where the primer keeps time, still without a hat or ride hit, so this step must have one
    (from the mixed distribution if it has any)."""
    parts = class_parts()
    p = p_model
    if decoding.groove_keep > 0 and covered[position]:
        p = (1.0 - decoding.groove_keep) * p + decoding.groove_keep * table[position]
    full = counts >= caps
    if full.any():
        p = np.where(parts[:, full].any(1), 0.0, p)
    if need_time:
        timed = parts[:, TIMEKEEPERS].any(1)
        p = np.where(timed, p, 0.0)
        if not p.sum() > 0:
            p = np.zeros_like(p_model)
            p[1 << TIMEKEEPERS[0]] = 1.0  # nothing likely keeps time here: a closed hat
    total = p.sum()
    if not total > 0:
        p = np.zeros_like(p_model)
        p[0] = 1.0
    else:
        p = p / total
    return nucleus(p, decoding.top_p)


def candidate_noise_seed(random_seed: int, primer: np.ndarray, index: int) -> int:
    """Sampling seed of candidate `index` from (pattern seed, seed content, candidate number), so the
    continuations of different seeds never share their noise. `primer` is the seed pattern used."""
    import hashlib

    primer = np.ascontiguousarray(np.asarray(primer, dtype=np.uint8))
    digest = hashlib.sha256(np.asarray(primer.shape, np.int64).tobytes() + primer.tobytes()).digest()
    seed = int(random_seed)
    words = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, int(index)]
    words += [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> 1)


class FastDrums:
    """Run-time form of a DrumsRNN for generation (CPU or CUDA, float32)."""

    def __init__(self, model: DrumsRNN, numpy_blas: bool | None = None):
        """numpy_blas: matrix products through numpy's BLAS (default: on CPU) or torch's."""
        cfg = model.config
        self.cfg = cfg
        self.n_cls = cfg.num_classes
        self.a = a = cfg.attn_size
        self.H = list(cfg.layers)
        self.L = cfg.attn_length
        dev = next(model.parameters()).device
        self.device = dev
        with torch.no_grad():
            p = {k: v.detach().float() for k, v in model.state_dict().items()}
            n_in = cfg.input_size
            # S layout offsets
            self.off_attn = COUNTER_BITS
            self.off_h = []
            o = COUNTER_BITS + a
            for h in self.H:
                self.off_h.append(o)
                o += h
            self.off_c = []
            for h in self.H:
                self.off_c.append(o)
                o += h
            self.width = o

            def gate_fix(w):  # scale j by 2 (one sigmoid for all gates); w [..., 4H]
                w = w.clone()
                h = w.shape[-1] // 4
                w[..., h:2 * h] *= 2
                return w

            k1, b1 = p["kernels.0"], p["biases.0"]
            wx1, wh1 = k1[:n_in], k1[n_in:]
            w_in, b_in = p["input_w"], p["input_b"]
            bias1 = b_in @ wx1 + b1
            bias1[2 * self.H[0]:3 * self.H[0]] += FORGET_BIAS
            self.event_table = gate_fix(w_in[:self.n_cls] @ wx1 + bias1).contiguous()  # (512, 4H)
            self.w = [gate_fix(torch.cat([w_in[self.n_cls:n_in] @ wx1, w_in[n_in:] @ wx1, wh1], 0)).contiguous()]
            self.b = [None]
            for i in range(1, len(self.H)):
                b = p[f"biases.{i}"].clone()
                b[2 * self.H[i]:3 * self.H[i]] += FORGET_BIAS
                self.w.append(gate_fix(p[f"kernels.{i}"]).contiguous())
                self.b.append(gate_fix(b)[None].contiguous())
            # query rows come as [c0 h0 c1 h1 c2 h2]; S holds [h0 h1 h2 c0 c1 c2]
            q = p["attn_q_w"]
            rows_c, rows_h, r = [], [], 0
            for h in self.H:
                rows_c.append(q[r:r + h])
                rows_h.append(q[r + h:r + 2 * h])
                r += 2 * h
            self.w_q = torch.cat(rows_h + rows_c, 0).contiguous()
            self.b_q = p["attn_q_b"][None].contiguous()
            out_w = p["out_w"]
            self.w_oh = out_w[:self.H[-1]].contiguous()
            self.w_oa = out_w[self.H[-1]:].contiguous()
            self.b_o = p["out_b"][None].contiguous()
            self.w_fk = torch.cat([p["fc_w"], p["attn_k"]], 1).contiguous()  # logits and key together
            self.b_fk = torch.cat([p["fc_b"], torch.zeros(a)])[None].contiguous()
            self.v = p["attn_v"].contiguous()
            # keys and query times -2, so one sigmoid gives the scores (module docstring); exact in float
            # (new tensors: p's tensors share the model's memory)
            self.w_fk[:, self.n_cls:] *= -2.0  # w_fk is a new tensor (torch.cat)
            self.w_q, self.b_q, self.v = self.w_q * -2.0, self.b_q * -2.0, self.v * -2.0
            self.counters = torch.from_numpy(counter_bits(np.arange(64)))  # period 64 for 6 bits
        for name in ("event_table", "w_q", "b_q", "w_oh", "w_oa", "b_o", "w_fk", "b_fk", "v", "counters"):
            setattr(self, name, getattr(self, name).to(dev))
        self.w = [w.to(dev) for w in self.w]
        self.b = [b if b is None else b.to(dev) for b in self.b]
        self.counter_rows = list(self.counters.unbind(0))  # views, so a step does no indexing
        # The operands of the matrix products in the array type their BLAS takes: numpy views sharing the
        # torch tensors' memory on CPU, the tensors themselves on CUDA.
        self.numpy_blas = dev.type == "cpu" if numpy_blas is None else bool(numpy_blas and dev.type == "cpu")
        arr = self._arr = (lambda t: t.numpy()) if self.numpy_blas else (lambda t: t)
        self.mw = [arr(w) for w in self.w]
        self.mb = [None] + [arr(b) for b in self.b[1:]]
        self.m_table, self.m_q, self.m_bq = arr(self.event_table), arr(self.w_q), arr(self.b_q)
        self.m_oh, self.m_oa, self.m_bo = arr(self.w_oh), arr(self.w_oa), arr(self.b_o)
        self.m_fk, self.m_bfk = arr(self.w_fk), arr(self.b_fk)

    def _linear(self, x, w, b, out) -> None:
        """out = b + x @ w, with the BLAS of this device (see the module docstring)."""
        if self.numpy_blas:
            np.matmul(x, w, out=out)
            np.add(out, b, out=out)
        else:
            torch.addmm(b, x, w, out=out)

    def _event_rows(self, events: torch.Tensor):
        """Layer 1's input term of each sequence's event: rows of the folded event table."""
        if self.numpy_blas:
            return self.m_table[events.numpy()]
        return self.event_table.index_select(0, events)

    # ---- state -------------------------------------------------------------------------------
    def new_state(self, batch: int) -> dict:
        z = lambda *s: torch.zeros(*s, device=self.device)  # noqa: E731
        return self._views({"S": z(batch, self.width), "mem": z(batch, self.L, self.a),
                            "R": z(batch, self.L, self.n_cls + self.a), "t": 0})

    @staticmethod
    def copy_rows(src: dict, dst: dict, rows: torch.Tensor) -> None:
        """dst's rows = src's `rows` (beam branching / pruning), in place, so dst's views stay valid."""
        for key in ("S", "mem", "R"):
            if src is dst:
                dst[key].copy_(src[key].index_select(0, rows))
            else:
                torch.index_select(src[key], 0, rows, out=dst[key])
        dst["t"] = src["t"]
        dst["logits"] = dst["logit_slots"][(src["t"] - 1) % dst["mem"].shape[1]]

    def _views(self, st: dict) -> dict:
        """Pre-made views and scratch buffers, so a step creates (almost) no tensors."""
        S, mem, R = st["S"], st["mem"], st["R"]
        B, a, H, dev = S.shape[0], self.a, self.H, self.device
        st["counter"] = S[:, :COUNTER_BITS]
        st["attn"] = S[:, self.off_attn:self.off_attn + a]
        st["layers"] = []
        for i, h in enumerate(H):
            oh, oc = self.off_h[i], self.off_c[i]
            g = torch.empty(B, 4 * h, device=dev)
            x = S[:, :oh + h] if i == 0 else S[:, self.off_h[i - 1]:oh + h]
            st["layers"].append((x, g, g[:, :h], g[:, h:2 * h], g[:, 2 * h:3 * h], g[:, 3 * h:],
                                 S[:, oc:oc + h], S[:, oh:oh + h]))
        st["query_in"] = S[:, self.off_h[0]:]
        st["h_top"] = S[:, self.off_h[-1]:self.off_h[-1] + H[-1]]
        st["z"] = torch.empty(B, 1, a, device=dev)
        st["scratch"] = torch.empty(B, self.L, a, device=dev)
        st["scratch2"] = st["scratch"].view(B * self.L, a)
        st["scores"] = torch.empty(B * self.L, device=dev)
        st["scores2"] = st["scores"].view(B, self.L)
        st["weights"] = torch.empty(B, 1, self.L, device=dev)
        st["weights2"] = st["weights"][:, 0]
        st["attn3"] = S[:, None, self.off_attn:self.off_attn + a]  # bmm writes the attention into S
        st["z2"] = st["z"][:, 0]
        # R's slots hold [logits | key] of each stored output, written there by one matrix product
        st["keys"] = R[:, :, self.n_cls:]
        st["fk_slots"] = list(R.unbind(1))
        st["logit_slots"] = [r[:, :self.n_cls] for r in st["fk_slots"]]
        st["logits"] = st["logit_slots"][-1]
        st["mem_slots"] = list(mem.unbind(1))  # the output is computed straight into its slot
        arr = self._arr
        st["m_layers"] = [(arr(x), arr(g)) for x, g, *_ in st["layers"]]
        st["m_query"] = (arr(st["query_in"]), arr(st["z2"]))
        st["m_out_in"] = (arr(st["h_top"]), arr(st["attn"]), arr(torch.empty(B, a, device=dev)))
        st["m_mem"] = [arr(m) for m in st["mem_slots"]]
        st["m_fk"] = [arr(r) for r in st["fk_slots"]]
        return st

    # ---- one step ------------------------------------------------------------------------------
    def step(self, st: dict, events: torch.Tensor) -> torch.Tensor:
        """Feed events (B,) at position st["t"]; returns the logits (B, 512) for the next step.

        The returned tensor is a buffer of the state: use it before the next step.
        """
        t = st["t"]
        st["counter"].copy_(self.counter_rows[t % 64])
        linear = self._linear
        for i, ((x, g), (_, g_t, gi, gj, gf, go, c, h)) in enumerate(zip(st["m_layers"], st["layers"])):
            linear(x, self.mw[i], self._event_rows(events) if i == 0 else self.mb[i], g)
            g_t.sigmoid_()
            c.mul_(gf).addcmul_(gi, gj, value=2.0).sub_(gi)  # c*f + i*tanh(j), tanh(j) = 2 sig(2j) - 1
            torch.tanh(c, out=h)
            h.mul_(go)
        query_in, query = st["m_query"]
        linear(query_in, self.m_q, self.m_bq, query)
        scratch = st["scratch"]
        torch.add(st["keys"], st["z"], out=scratch)
        scratch.sigmoid_()
        torch.mv(st["scratch2"], self.v, out=st["scores"])
        torch._softmax(st["scores2"], 1, False, out=st["weights2"])
        torch.bmm(st["weights"], st["mem"], out=st["attn3"])
        # the new output goes straight into the slot of the oldest one (already used above)
        slot = t % self.L
        h_top, attn, tmp = st["m_out_in"]
        linear(attn, self.m_oa, self.m_bo, tmp)
        out = st["m_mem"][slot]
        linear(h_top, self.m_oh, tmp, out)
        linear(out, self.m_fk, self.m_bfk, st["m_fk"][slot])
        st["t"] = t + 1
        logits = st["logits"] = st["logit_slots"][slot]
        return logits

    # ---- generation ----------------------------------------------------------------------------
    def gumbel(self, shape, temperature: float, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
        return u.log_().neg_().log_().neg_().mul_(temperature).to(self.device)  # -log(-log u) * t

    @torch.inference_mode()
    def generate(self, primer: np.ndarray, total_steps: int, *, temperature: float = 1.0, seed: int = 0,
                 beam: BeamOptions = BeamOptions(), decoding: Decoding = PLAIN,
                 steps_per_bar: int = 16) -> np.ndarray:
        """Continue `primer` (class labels, at least one, starting on a bar line) to `total_steps` labels.

        `decoding` steers sampling (beam size 1); beam search uses the model's distribution as it is."""
        primer = np.asarray(primer, dtype=np.int64)
        if len(primer) < 1:
            raise ValueError("primer needs at least one step")
        if len(primer) >= total_steps:
            return primer[:total_steps].copy()
        gen = torch.Generator().manual_seed(int(seed))
        n_new = total_steps - len(primer)
        # Steps are tiny matmuls (batch <= beam x branch rows): extra threads only add sync cost, and on
        # a busy CPU OpenMP's spinning threads make them ~50x slower. One thread for torch and for numpy's
        # BLAS, restored afterwards.
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and threads != 1:
            torch.set_num_threads(1)
        try:
            with threadpool_limits(1, user_api="blas"):
                if beam.beam_size == 1 and beam.branch_factor == 1:
                    if not decoding.plain:
                        return self._sample_guided(primer, total_steps, temperature, seed, decoding, steps_per_bar)
                    return self._sample(primer, total_steps, temperature, gen)
                return self._beam(primer, n_new, temperature, gen, beam)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _prime(self, primer: np.ndarray, batch: int) -> tuple[dict, torch.Tensor]:
        """Feed all primer steps; returns the state and the logits for the first new step."""
        state = self.new_state(batch)
        p = torch.from_numpy(primer).to(self.device)
        logits = None
        for k in range(len(primer)):
            logits = self.step(state, p[k:k + 1].expand(batch))
        return state, logits

    def _sample(self, primer, total_steps, temperature, gen) -> np.ndarray:
        n_new = total_steps - len(primer)
        noise = self.gumbel((n_new, 1, self.n_cls), temperature, gen) if temperature > 0 else None
        out = torch.empty(total_steps, dtype=torch.int64, device=self.device)
        out[:len(primer)] = torch.from_numpy(primer)
        state, logits = self._prime(primer, 1)
        dests = out.view(total_steps, 1).unbind(0)[len(primer):]  # (1,) views, made once
        step = self.step
        if noise is None:
            for dest in dests[:-1]:
                torch.argmax(logits, 1, out=dest)
                logits = step(state, dest)
            torch.argmax(logits, 1, out=dests[-1])
        else:
            noisy = torch.empty_like(logits)
            rows = noise.unbind(0)
            for dest, row in zip(dests[:-1], rows):
                torch.argmax(torch.add(logits, row, out=noisy), 1, out=dest)
                logits = step(state, dest)
            torch.argmax(torch.add(logits, rows[-1], out=noisy), 1, out=dests[-1])
        return out.cpu().numpy()

    def _sample_guided(self, primer, total_steps, temperature, seed, decoding: Decoding, spb: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
        table, covered = primer_step_distribution(primer, spb)
        caps = density_caps(primer, spb, decoding.density_cap)
        hits = class_parts()
        out = np.empty(total_steps, np.int64)
        out[:len(primer)] = primer
        state, logits = self._prime(primer, 1)
        start = len(primer) - len(primer) % spb
        counts = hits[primer[start:]].sum(0)  # hits so far in the current bar
        forced_at = time_positions(primer, spb) if decoding.keep_time else None
        ev_t = torch.empty(1, dtype=torch.int64, device=self.device)
        for t in range(len(primer), total_steps):
            if t % spb == 0:
                counts[:] = 0
            x = logits[0].double().cpu().numpy()
            x = x / temperature if temperature > 0 else x
            p = np.exp(x - x.max())
            p /= p.sum()
            need_time = (forced_at is not None and forced_at[t % spb]
                         and not counts[list(TIMEKEEPERS)].any())
            q = guided_distribution(p, t % spb, counts, table=table, covered=covered, caps=caps,
                                    decoding=decoding, need_time=need_time)
            if temperature > 0:
                ev = int(min(np.searchsorted(np.cumsum(q), rng.random() * q.sum(), side="right"), NUM_CLASSES - 1))
                if q[ev] == 0:  # rounding at the end of the cumulative sum
                    ev = int(np.flatnonzero(q)[-1])
            else:
                ev = int(np.argmax(q))
            out[t] = ev
            counts += hits[ev]
            if t + 1 < total_steps:
                ev_t[0] = ev
                logits = self.step(state, ev_t)
        return out

    def _beam(self, primer, n_new, temperature, gen, beam: BeamOptions) -> np.ndarray:
        """Magenta's beam search: sample branch_factor continuations of each kept sequence for
        steps_per_iteration steps, keep the beam_size best by log-likelihood, repeat."""
        B0, width = beam.beam_size, beam.beam_size * beam.branch_factor
        small, _ = self._prime(primer, B0)
        big = self.new_state(width) if width > B0 else small
        seqs = torch.zeros((B0, n_new), dtype=torch.int64, device=self.device)
        scores = torch.zeros(B0, device=self.device)
        inv_t = 1.0 / temperature if temperature > 0 else 1.0
        noise = self.gumbel((n_new, width, self.n_cls), 1.0, gen) if temperature > 0 else None
        pos = 0

        def advance(state, seqs, scores, steps):
            nonlocal pos
            rows = seqs.shape[0]
            for _ in range(steps):
                logp = torch.log_softmax(state["logits"] * inv_t, 1)
                ev = torch.argmax(logp + noise[pos, :rows], 1) if noise is not None else torch.argmax(logp, 1)
                scores = scores + logp.gather(1, ev[:, None])[:, 0]
                seqs[:, pos] = ev
                pos += 1
                if pos < n_new:
                    self.step(state, ev)
            return scores

        scores = advance(small, seqs, scores, (n_new - 1) % beam.steps_per_iteration + 1)
        branch = torch.arange(B0, device=self.device).repeat_interleave(beam.branch_factor)
        while pos < n_new:
            if big is not small:
                self.copy_rows(small, big, branch)
                seqs, scores = seqs[branch], scores[branch]
            scores = advance(big, seqs, scores, min(beam.steps_per_iteration, n_new - pos))
            keep = torch.argsort(scores, descending=True, stable=True)[:B0]
            self.copy_rows(big, small, keep)
            seqs, scores = seqs[keep], scores[keep]
        best = int(torch.argmax(scores))
        return np.concatenate([primer, seqs[best].cpu().numpy()])


def bare_stack_loop(model: DrumsRNN, steps: int, batch: int = 1) -> None:
    """The limit for benchmarks: the same 3 LSTM layers (no attention, no sampling) stepped with
    torch's fused `lstm_cell` on converted weights. Layer 1's input is the 518-wide projected input."""
    cfg = model.config
    with torch.inference_mode():
        ws = []
        for i, h in enumerate(cfg.layers):
            k = model.kernels[i].detach().float()
            b = model.biases[i].detach().float().clone()
            b[2 * h:3 * h] += FORGET_BIAS
            n_in = k.shape[0] - h
            # TF (i, j, f, o) -> torch (i, f, g, o)
            perm = torch.cat([torch.arange(0, h), torch.arange(2 * h, 3 * h), torch.arange(h, 2 * h),
                              torch.arange(3 * h, 4 * h)])
            ws.append((k[:n_in, perm].t().contiguous(), k[n_in:, perm].t().contiguous(), b[perm].contiguous()))
        x = torch.zeros(batch, cfg.input_size)
        hs = [(torch.zeros(batch, h), torch.zeros(batch, h)) for h in cfg.layers]
        for _ in range(steps):
            inp = x
            for i, (wi, wh, b) in enumerate(ws):
                hs[i] = torch.lstm_cell(inp, hs[i], wi, wh, b, None)
                inp = hs[i][0]
