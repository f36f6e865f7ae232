"""Every field of every device config pinned against an independent float64 reference.

The reference below is written from the device equations (Gokmen & Vlasov 2016 for the pulsed step; the
incumbent aihwkit 1.1's device models for the step laws, device-to-device sampling and periodic operations)
and shares no helper with ``crossbar.physics.devices``: it re-derives the hidden parameters from the config and the
named device-to-device normals, applies pulses with its own step laws, and replays decay, diffusion, reset,
drift and write noise from the tile's named draws. Only ``crossbar.physics.rng`` (Philox, checked against the
Random123 known-answer vectors) is shared, to name the same random numbers.

Three observations of a device config are compared, code against reference:

* ``hidden``: the hidden parameters of a 10 x 6 tile (bounds, steps, slopes, references, decay scales, ...);
* ``trace``: a 40-pulse noisy pulse response of 16 devices (one real tile update per pulse, BL 1);
* ``ops``: set_weights, post_update_step (diffusion, decay), reset_columns and two drift calls on that tile;

plus the weight granularity. For each field the check sets it away from the base value in a scenario
where it acts, asserts code == reference (float32 rounding), and asserts that the reference moves when the
field takes its default or is changed by 10% (so ignoring the field, or a 10% error, fails the check).
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import AnalogTile, DriftParameter, IOParameters, TileConfig, UpdateParameters
from crossbar.physics import rng
from crossbar.config import Config

F32 = np.float32
TILE_SEED = 3
SHAPE = (10, 6)
N_TRACE = 16
DIRECTIONS = np.r_[np.ones(10), -np.ones(10), np.ones(10), -np.ones(10)]
S = rng.Stream

# ---- base configs: every feature on, at moderate values -------------------------------------------

COMMON = dict(dw_min=0.05, dw_min_dtod=0.25, dw_min_std=0.2, up_down=0.15, up_down_dtod=0.05, w_max=0.9,
              w_min=-0.7, w_max_dtod=0.35, w_min_dtod=0.3, corrupt_devices_prob=0.1, corrupt_devices_range=0.2,
              lifetime=50.0, lifetime_dtod=0.2, diffusion=0.01, diffusion_dtod=0.3, reset=0.05, reset_dtod=0.02,
              reset_std=0.03, drift=DriftParameter(nu=0.1, nu_dtod=0.3))
WRITE_NOISE = dict(write_noise_std=0.3)
LINEAR = dict(gamma_up=0.3, gamma_down=0.5, gamma_up_dtod=0.1, gamma_down_dtod=0.1)
EXP = dict(A_up=0.05, A_down=0.3, gamma_up=3.0, gamma_down=4.0, a=0.5, b=0.1, dw_min_std_add=0.01,
           dw_min_std_slope=0.05)
POW = dict(pow_gamma=1.5, pow_gamma_dtod=0.1, pow_up_down=0.2, pow_up_down_dtod=0.05)
REF = dict(reference_mean=0.05, reference_std=0.04, subtract_symmetry_point=True)
PMAX_DERIVED = ("dw_min", "up_down", "w_max", "w_min")

BASE = {
    D.ConstantStepDevice: D.ConstantStepDevice(**COMMON),
    D.LinearStepDevice: D.LinearStepDevice(**COMMON, **WRITE_NOISE, **LINEAR),
    D.SoftBoundsDevice: D.SoftBoundsDevice(**COMMON, **WRITE_NOISE),
    D.SoftBoundsPmaxDevice: D.SoftBoundsPmaxDevice(**{k: v for k, v in COMMON.items() if k not in PMAX_DERIVED},
                                                   **WRITE_NOISE, p_max=300, alpha=0.004, range_min=-0.8,
                                                   range_max=1.1),
    D.SoftBoundsReferenceDevice: D.SoftBoundsReferenceDevice(**COMMON, **WRITE_NOISE, **REF, slope_up_dtod=0.1,
                                                             slope_down_dtod=0.15),
    D.ExpStepDevice: D.ExpStepDevice(**COMMON, **WRITE_NOISE, **EXP),
    D.PowStepDevice: D.PowStepDevice(**COMMON, **WRITE_NOISE, **POW),
    D.PowStepReferenceDevice: D.PowStepReferenceDevice(**COMMON, **POW, **REF, n_estimation_steps=50),
    D.PiecewiseStepDevice: D.PiecewiseStepDevice(**COMMON, **WRITE_NOISE, piecewise_up=(0.5, 1.0, 1.5, 1.2),
                                                 piecewise_down=(1.4, 1.1, 0.9, 0.6)),
}
assert set(BASE) == set(D.PULSED_DEVICES)

#: field -> scenarios, each ``(alternative value, other fields set with it[, the nearby value])``; other
#: fields a class lacks are skipped. The default rule (x 1.3, or the flipped bool) applies to fields not
#: listed; the nearby value (for the sensitivity check) is the value changed by 10% unless given.
SCENARIOS = {
    "construction_seed": [(77, {})],
    "dw_min_std": [(0.26, {}), (0.5, {})],  # ConstantStep: closed-form runs, then pulse by pulse
    "dw_min_dtod_log_normal": [(True, {})],
    "enforce_consistency": [(False, dict(w_max_dtod=1.2, w_min_dtod=1.2, dw_min_dtod=0.9, up_down_dtod=0.5,
                                         subtract_symmetry_point=False))],
    "perfect_bias": [(True, {})],
    "corrupt_devices_prob": [(0.3, {}, 0.4)],  # 60 devices: +0.1 flips a few
    "up_down": [(-0.2, {}), (0.25, {})],
    "count_pulses": None,
    "allow_increasing": [(True, dict(gamma_up=0.05, gamma_down=0.05, gamma_up_dtod=0.2, gamma_down_dtod=0.2))],
    "mean_bound_reference": [(False, {})],
    "reverse_up": [(True, {})],
    "reverse_down": [(True, {})],
    "reverse_offset": [(0.05, dict(reverse_up=True, reverse_down=True))],
    "mult_noise": [(True, dict(reverse_up=False, reverse_down=False)), (False, dict(reverse_up=False,
                                                                                   reverse_down=False))],
    "subtract_symmetry_point": [(False, {})],
    "n_estimation_steps": [(80, {}), (-1, dict(dw_min=0.2), 20)],  # every value <= 0 means auto
    "apply_write_noise_on_set": [(False, {})],
    "write_noise_std": [(0.45, {})],
    "drift": [(DriftParameter(nu=0.05, nu_dtod=0.5, t_0=2.0), {})],
    "reset": [(-0.08, {})],
    "piecewise_up": [((0.3, 1.3, 1.0, 0.7), {}), ((0.8, 1.2), dict(piecewise_down=(1.0, 0.9)))],
    "piecewise_down": [((0.7, 1.4, 1.0, 0.4), {})],
    "range_min": [(-0.6, {})],
    "range_max": [(0.9, {})],
}

EXEMPT = {f"PulsedDevice.{f.name}": "abstract base class; every field is pinned on each concrete device"
          for f in dataclasses.fields(D.PulsedDevice)}
for cls in D.PULSED_DEVICES:
    EXEMPT[f"{cls.__name__}.count_pulses"] = ("bookkeeping, not physics: the counters are pinned by "
                                              "tests/unit/test_tile.py::test_pulse_counters_count_every_pulse")
    if not cls.supports_write_noise:
        for name in ("write_noise_std", "apply_write_noise_on_set"):
            EXEMPT[f"{cls.__name__}.{name}"] = "fixed to its default by validation: the model has no write noise"
for name in ("gamma_up", "gamma_down", "gamma_up_dtod", "gamma_down_dtod", "mean_bound_reference",
             "allow_increasing"):
    for cls in (D.SoftBoundsDevice, D.SoftBoundsPmaxDevice):
        EXEMPT[f"{cls.__name__}.{name}"] = ("fixed by validation: soft bounds are the LinearStep with gamma = 1 "
                                            "and no gamma spread")
for name in PMAX_DERIVED:
    EXEMPT[f"SoftBoundsPmaxDevice.{name}"] = "derived from p_max, alpha, range_min and range_max (overwritten)"
EXEMPT["IdealDevice.construction_seed"] = "the ideal device has no device-to-device variation to seed"


# ---- the reference -----------------------------------------------------------------------------------

def d2d(key, name, shape):
    """The named device-to-device normal of the construction contract: stream D2D, c2 = crc32(name)."""
    return rng.normal_array(key, S.D2D, shape, c2=zlib.crc32(name.encode())).astype(np.float64)


def d2d_u(key, name, shape):
    return rng.uniform_array(key, S.D2D, shape, c2=zlib.crc32(name.encode())).astype(np.float64)


def pmax_mapping(dev):
    span = (dev.range_max - dev.range_min) / (1 - np.exp(-dev.p_max * dev.alpha))
    return dict(w_min=dev.range_min, w_max=dev.range_min + span, dw_min=span * dev.alpha,
                up_down=1 + 2 * dev.range_min / span)


def fields(dev):
    """The config's values, with SoftBoundsPmax's four derived fields recomputed here."""
    f = {x.name: getattr(dev, x.name) for x in dataclasses.fields(dev)}
    if isinstance(dev, D.SoftBoundsPmaxDevice):
        f.update(pmax_mapping(dev))
    return f


def ref_sample(dev, shape, key):
    """Hidden parameters (float64) from the construction equations."""
    c = fields(dev)
    n = lambda name: d2d(key, name, shape)  # noqa: E731
    bu = c["w_max"] * (1 + c["w_max_dtod"] * n("max_bound"))
    bd = c["w_min"] * (1 + c["w_min_dtod"] * n("min_bound"))
    g = (np.exp(c["dw_min_dtod"] * n("dw_min")) if c["dw_min_dtod_log_normal"]
         else 1 + c["dw_min_dtod"] * n("dw_min"))
    r = c["up_down_dtod"] * n("up_down")
    du = (min(c["up_down"], 0) + g + r) * c["dw_min"]
    dd = (-max(c["up_down"], 0) + g - r) * c["dw_min"]
    if c["enforce_consistency"]:
        du, dd = abs(du), abs(dd)
        lo, hi = np.minimum(bu, bd), np.maximum(bu, bd)
        bu, bd = abs(hi), -abs(lo)
    else:
        mid = 0.5 * (bu + bd)
        bu, bd = np.where(bd > bu, mid, bu), np.where(bd > bu, mid, bd)
    if c["corrupt_devices_prob"] > 0:
        stuck = d2d_u(key, "corrupt", shape) < c["corrupt_devices_prob"]
        R = c["corrupt_devices_range"]
        lo, hi = np.maximum(np.minimum(bu, bd), -R), np.minimum(np.maximum(bu, bd), R)
        v = lo + (hi - lo) * d2d_u(key, "corrupt_value", shape)
        bu, bd, du, dd = (np.where(stuck, a, b) for a, b in ((v, bu), (v, bd), (0.0, du), (0.0, dd)))
    if c["perfect_bias"]:
        du, dd, bu, bd = du.copy(), dd.copy(), bu.copy(), bd.copy()
        du[:, -1] = dd[:, -1] = c["dw_min"]
        bu[:, -1], bd[:, -1] = 100 * c["w_max"], 100 * c["w_min"]
    q = dict(max_bound=bu, min_bound=bd, dwmin_up=du, dwmin_down=dd)
    q["diffusion_rates"] = abs(c["diffusion"] * (1 + c["diffusion_dtod"] * n("diffusion")))
    q["reset_bias"] = c["reset"] + c["reset_dtod"] * n("reset")
    life = c["lifetime"] * (1 + c["lifetime_dtod"] * n("lifetime"))
    q["decay_scales"] = np.where(life > 1, 1 - 1 / np.maximum(life, 1), 0.0) if c["lifetime"] > 0 else np.ones(shape)
    if c["drift"].nu > 0:
        q["drift_nu"] = c["drift"].nu * (1 + c["drift"].nu_dtod * n("drift_nu"))
    if isinstance(dev, D.LinearStepDevice):
        gu = c["gamma_up"] + c["gamma_up_dtod"] * n("gamma_up")
        gd = c["gamma_down"] + c["gamma_down_dtod"] * n("gamma_down")
        if not c["allow_increasing"]:
            gu, gd = abs(gu), abs(gd)
        top, bottom = (c["w_max"], c["w_min"]) if c["mean_bound_reference"] else (bu, bd)
        ru = bottom - c["reverse_offset"] if c["reverse_up"] else top
        rd = top + c["reverse_offset"] if c["reverse_down"] else bottom
        ru, rd = np.broadcast_to(ru, shape), np.broadcast_to(rd, shape)
        q["slope_up"] = np.divide(-gu * du, ru, out=np.zeros(shape), where=ru != 0)
        q["slope_down"] = np.divide(-gd * dd, rd, out=np.zeros(shape), where=rd != 0)
    if isinstance(dev, D.SoftBoundsReferenceDevice):
        inside = (bu > 0) & (bd < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            su = du / bu * abs(1 + c["slope_up_dtod"] * n("slope_up"))
            sd = -dd / bd * abs(1 + c["slope_down_dtod"] * n("slope_down"))
            q["max_bound"] = bu = np.where(inside & (su > 0), du / su, bu)
            q["min_bound"] = bd = np.where(inside & (sd > 0), -dd / sd, bd)
    if isinstance(dev, D.PowStepDevice):
        g2, r2, pud = 1 + c["pow_gamma_dtod"] * n("pow_gamma"), c["pow_up_down_dtod"] * n("pow_up_down"), c["pow_up_down"]
        q["gamma_up"] = (min(pud, 0) + g2 + r2) * c["pow_gamma"]
        q["gamma_down"] = (-max(pud, 0) + g2 - r2) * c["pow_gamma"]
        if c["enforce_consistency"]:
            q["gamma_up"], q["gamma_down"] = abs(q["gamma_up"]), abs(q["gamma_down"])
    if isinstance(dev, (D.SoftBoundsReferenceDevice, D.PowStepReferenceDevice)):
        q["reference"] = c["reference_mean"] + c["reference_std"] * n("reference")
        if c["subtract_symmetry_point"]:
            sp = soft_bounds_symmetry(q) if isinstance(dev, D.SoftBoundsReferenceDevice) else pow_symmetry(c, q)
            q["reference"] = q["reference"] + sp
            q["reset_bias"] = q["reset_bias"] + sp
    if c.get("write_noise_std", 0) > 0:
        q["persistent_weights"] = np.zeros(shape)
    return q


def soft_bounds_symmetry(q):
    """Where the soft-bounds up and down steps are equal: dup (1 - w/b+) = ddn (1 - w/b-)."""
    du, dd, bu, bd = q["dwmin_up"], q["dwmin_down"], q["max_bound"], q["min_bound"]
    den = du / bu - dd / bd
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, (du - dd) / den, 0.0)


def pow_symmetry(c, q):
    """The PowStep symmetry point found by simulating alternating up and down pulses from 0."""
    R = q["max_bound"] - q["min_bound"]
    if c["n_estimation_steps"] > 0:
        steps = np.full(R.shape, c["n_estimation_steps"])
    else:
        steps = np.minimum(np.rint(10 * R / np.maximum(np.minimum(q["dwmin_up"], q["dwmin_down"]), 1e-12)), 10000)
    sp = np.zeros(R.shape)
    steps = np.where(R > 0, steps, 0)
    safe = np.where(R > 0, R, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(int(steps.max())):  # device i takes steps[i] up/down pairs
            pair = (q["dwmin_up"] * np.maximum((q["max_bound"] - sp) / safe, 0) ** q["gamma_up"]
                    - q["dwmin_down"] * np.maximum((sp - q["min_bound"]) / safe, 0) ** q["gamma_down"])
            sp = np.where(n < steps, sp + pair, sp)
    return sp


def ref_granularity(dev):
    c = fields(dev)
    if isinstance(dev, D.ExpStepDevice):
        down = (1 - max(c["up_down"], 0)) * c["dw_min"] * max(1 - c["A_down"] * np.exp(-c["gamma_down"] * c["b"]), 0)
        return down if down > 0 else c["dw_min"]
    if isinstance(dev, D.PowStepDevice):
        return c["dw_min"] * 0.5 ** c["pow_gamma"]
    if isinstance(dev, D.PiecewiseStepDevice):
        return c["dw_min"] * c["piecewise_up"][len(c["piecewise_up"]) // 2]
    return c["dw_min"]


def ref_step(dev, q, g, up, xi):
    """One pulse (float64) on the device-space weights ``g``; ``q`` holds this device's parameters."""
    c = fields(dev)
    bu, bd, du, dd, sig = q["max_bound"], q["min_bound"], q["dwmin_up"], q["dwmin_down"], c["dw_min_std"]
    R = bu - bd
    if isinstance(dev, D.ConstantStepDevice):
        new = np.where(up, g + du * (1 + sig * xi), g - dd * (1 + sig * xi))
    elif isinstance(dev, D.LinearStepDevice):
        a, base = np.where(up, q["slope_up"], q["slope_down"]), np.where(up, du, dd)
        dw = (a * g + base) * (1 + sig * xi) if c["mult_noise"] else a * g + base * (1 + sig * xi)
        new = np.where(up, g + dw, g - dw)
    elif isinstance(dev, D.SoftBoundsReferenceDevice):
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_u, rel_d = np.where(bu > 0, g / bu, 0.0), np.where(bd < 0, g / bd, 0.0)
        if c["mult_noise"]:
            new = np.where(up, g + du * (1 - rel_u) * (1 + sig * xi), g - dd * (1 - rel_d) * (1 + sig * xi))
        else:
            new = np.where(up, g + du * (1 - rel_u + sig * xi), g - dd * (1 - rel_d + sig * xi))
    elif isinstance(dev, D.ExpStepDevice):
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(R > 0, 2 * c["a"] * g / R + c["b"], c["b"])
        dw = np.where(up, du * np.maximum(1 - c["A_up"] * np.exp(c["gamma_up"] * z), 0),
                      -dd * np.maximum(1 - c["A_down"] * np.exp(-c["gamma_down"] * z), 0))
        if sig > 0 and (c["dw_min_std_add"] != 0 or c["dw_min_std_slope"] != 0):
            new = g + dw + sig * (abs(dw) + c["dw_min_std_add"] + c["dw_min_std_slope"] * abs(g)) * xi
        else:
            new = g + dw * (1 + sig * xi)
    elif isinstance(dev, D.PowStepDevice):
        with np.errstate(divide="ignore", invalid="ignore"):
            up_mag = du * np.maximum((bu - g) / R, 0) ** q["gamma_up"]
            down_mag = dd * np.maximum((g - bd) / R, 0) ** q["gamma_down"]
        new = np.where(R > 0, np.where(up, g + up_mag * (1 + sig * xi), g - down_mag * (1 + sig * xi)), g)
    elif isinstance(dev, D.PiecewiseStepDevice):
        nu, nd = np.asarray(c["piecewise_up"]), np.asarray(c["piecewise_down"])
        sections = len(nu) - 1
        if sections == 0:
            v = np.where(up, nu[0], nd[0])
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                pos = np.clip((g - bd) / R * sections, 0, sections)
            knots = np.arange(sections + 1)
            v = np.where(up, np.interp(pos, knots, nu), np.interp(pos, knots, nd))
            v = np.where(R > 0, v, np.where(up, nu[0], nd[0]))
        new = np.where(up, g + du * v * (1 + sig * xi), g - dd * v * (1 + sig * xi))
    return np.minimum(np.maximum(new, bd), bu)


def reference_of(q):
    return q.get("reference", 0.0)


class RefTile:
    """The reference's weights of one tile: visible weights, the persistent (write-noise) weights, and the
    tile's operation counter, which names the draws of each periodic operation."""

    def __init__(self, dev, shape):
        c = fields(dev)
        self.dev, self.c, self.shape = dev, c, shape
        seed = dev.construction_seed if dev.construction_seed is not None else TILE_SEED
        self.q = ref_sample(dev, shape, rng.seed_key(seed, 1))
        self.key = rng.seed_key(TILE_SEED, 0)
        self.wn = c.get("write_noise_std", 0.0) * c["dw_min"]
        self.vis = np.zeros(shape)
        self.pers = np.zeros(shape)
        self.ops = 0
        self.drift_state = None

    def clip(self, g):
        return np.minimum(np.maximum(g, self.q["min_bound"]), self.q["max_bound"])

    def device_weights(self):
        return (self.pers if self.wn else self.vis) + reference_of(self.q)

    def store(self, g, noisy=True):
        w = g - reference_of(self.q)
        self.pers = w
        self.vis = w.copy()
        if self.wn and noisy:
            self.vis = w + self.wn * rng.normal_array(self.key, S.WRITE_NOISE, self.shape, c1=self.next_op(), c2=1)

    def next_op(self):
        self.ops += 1
        return self.ops - 1

    def normals(self, stream, op, c2=0):
        return rng.normal_array(self.key, stream, self.shape, c1=op, c2=c2).astype(np.float64)

    def set_weights(self, w):
        self.store(self.clip(w + reference_of(self.q)), noisy=self.c.get("apply_write_noise_on_set", True))

    def post_update_step(self):
        q = self.q
        if self.c["diffusion"] > 0:
            xi = self.normals(S.DIFFUSION, self.next_op())
            self.store(self.clip(self.device_weights() + q["diffusion_rates"] * xi))
        if self.c["lifetime"] > 0:
            g = self.device_weights()
            self.store(self.clip((g - q["reset_bias"]) * q["decay_scales"] + q["reset_bias"]))

    def reset_columns(self, start, n, prob):
        op = self.next_op()
        mask = np.zeros(self.shape, bool)
        mask[:, (start + np.arange(n)) % self.shape[1]] = True
        mask &= rng.uniform_array(self.key, S.RESET, self.shape, c1=op, c2=0) < F32(prob)
        g = np.where(mask, self.q["reset_bias"] + self.c["reset_std"] * self.normals(S.RESET, op, 1),
                     self.device_weights())
        self.store(self.clip(g))

    def drift(self, dt):
        cfg = self.c["drift"]
        if cfg.nu <= 0:
            return
        g = self.device_weights()
        if self.drift_state is None:
            self.drift_state = dict(w0=g, t=np.zeros(self.shape), prev=g, T=0.0)
        st = self.drift_state
        st["T"] += dt / cfg.t_0
        moved = abs(st["prev"] - g) > cfg.reset_tol
        st["t"] = np.where(moved, st["T"], st["t"])
        st["w0"] = np.where(moved, g, st["w0"])
        self.next_op()  # this configuration draws nothing (no nu_std, no w_noise_std)
        f = np.maximum(st["T"] - st["t"], 1.0) ** -self.q["drift_nu"]
        offset = cfg.g_offset * cfg.wg_ratio + cfg.w_offset
        g = self.clip(np.where(moved, g, st["w0"] * f + offset * (f - 1)))
        st["prev"] = g
        self.store(g)


@functools.cache
def trace_normals(stream):
    """``(len(DIRECTIONS), N_TRACE)`` float64 normals of the trace, row ``k`` = pulse (sample) ``k``, column
    ``i`` = device: SUM_NOISE word ``k & 3`` of counter (i, k >> 2), the others word 0 of counter (i, k, 0)."""
    key = rng.seed_key(TILE_SEED, 0)
    k, i = np.meshgrid(np.arange(len(DIRECTIONS)), np.arange(N_TRACE), indexing="ij")
    if stream == S.SUM_NOISE:
        return np.take_along_axis(rng.normal(key, stream, i, k >> 2, 0), (k & 3)[None], 0)[0].astype(np.float64)
    return rng.normal(key, stream, i, k, 0)[0].astype(np.float64)


def pulse_xi(dev, k):
    """The c2c normals of pulse ``k`` on the trace's devices: closed-form runs of ConstantStep draw
    SUM_NOISE; pulses applied one by one draw PULSE_NOISE."""
    closed_form = isinstance(dev, D.ConstantStepDevice) and dev.dw_min_std <= 0.33
    return trace_normals(S.SUM_NOISE if closed_form else S.PULSE_NOISE)[k]


def ref_trace(dev):
    t = RefTile(dev, (N_TRACE, 1))
    t.set_weights(np.full(t.shape, fields(dev)["w_min"]))
    out = [t.vis[:, 0].copy()]
    for k, direction in enumerate(DIRECTIONS):
        g = t.device_weights()[:, 0]
        xi = pulse_xi(dev, k)
        g = ref_step(dev, {name: v[:, 0] for name, v in t.q.items()}, g, np.full(N_TRACE, direction > 0), xi)
        w = g - (t.q["reference"][:, 0] if "reference" in t.q else 0.0)
        t.pers[:, 0] = t.vis[:, 0] = w
        if t.wn:
            t.vis[:, 0] = w + t.wn * trace_normals(S.WRITE_NOISE)[k]
        out.append(t.vis[:, 0].copy())
    return np.array(out)


W0 = np.random.default_rng(0).uniform(-0.5, 0.6, SHAPE)


def run_ops(tile):
    """The periodic-operation sequence on a tile (code or reference); visible and persistent weights after each."""
    obs = {}

    def look(name):
        if isinstance(tile, RefTile):
            obs[name], obs[name + "/persistent"] = tile.vis.copy(), tile.pers.copy()
        else:
            obs[name] = tile.get_weights()
            hidden = tile.hidden_parameters()
            obs[name + "/persistent"] = hidden.get("persistent_weights", obs[name])
    tile.set_weights(W0.astype(F32) if not isinstance(tile, RefTile) else W0.astype(F32).astype(np.float64))
    look("set")
    tile.post_update_step()
    look("post_update_step")
    tile.reset_columns(4, 3, 0.7)
    look("reset")
    tile.drift(5.0)
    tile.drift(20.0)
    look("drift")
    return obs


@functools.cache
def ref_observe(dev):
    t = RefTile(dev, SHAPE)
    obs = {f"hidden/{k}": v for k, v in t.q.items()}
    obs.update({f"ops/{k}": v for k, v in run_ops(t).items()})
    obs["granularity"] = np.array(ref_granularity(dev))
    obs["trace"] = ref_trace(dev)
    return obs


def code_observe(dev):
    tile = AnalogTile(*SHAPE, TileConfig(device=dev), seed=TILE_SEED)
    obs = {f"hidden/{k}": np.array(v) for k, v in tile.hidden_parameters().items()}
    obs.update({f"ops/{k}": v for k, v in run_ops(tile).items()})
    obs["granularity"] = np.array(dev.granularity())
    cfg = TileConfig(device=dev, forward=IOParameters(is_perfect=True),
                     update=UpdateParameters(desired_bl=1, update_management=False, update_bl_management=False))
    trace_tile = AnalogTile(N_TRACE, 1, cfg, seed=TILE_SEED)
    trace_tile.set_weights(np.full((N_TRACE, 1), fields(dev)["w_min"], F32))
    trace = [trace_tile.get_weights()[:, 0]]
    for direction in DIRECTIONS:  # x = -1, d = direction, lr = 1: one pulse, up for direction +1
        trace_tile.update(np.full((1, 1), -1.0, F32), np.full((1, N_TRACE), direction, F32), 1.0)
        trace.append(trace_tile.get_weights()[:, 0])
    obs["trace"] = np.array(trace)
    return obs


def tolerance(ref):
    """Float32 rounding of the code against float64: relative 2e-6 plus 1e-6 of the array's scale."""
    scale = np.nanmax(np.abs(ref)) if np.size(ref) and np.isfinite(ref).any() else 1.0
    return 2e-6 * np.abs(ref) + 1e-6 * max(scale, 1e-3)


def distance(a, b):
    """Largest difference between two observations in units of the tolerance of ``b`` (infinite where they
    hold different hidden parameters)."""
    worst = 0.0
    if a.keys() != b.keys():
        return np.inf
    for k in b:
        x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
        assert x.shape == y.shape, (k, x.shape, y.shape)
        nan = np.isnan(x) != np.isnan(y)
        if nan.any():
            return np.inf
        ok = ~np.isnan(y)
        if ok.any():
            worst = max(worst, float((np.abs(x - y)[ok] / tolerance(y)[ok]).max()))
    return worst


def where_differs(a, b):
    return sorted(set(a) ^ set(b)) + [k for k in b if k in a and distance({k: a[k]}, {k: b[k]}) > 1]


def assert_code_matches_reference(dev):
    got, want = code_observe(dev), ref_observe(dev)
    assert distance(got, want) <= 1, f"{dev!r}: code differs from the reference in {where_differs(got, want)}"


def nearby(value):
    """The value changed by 10% (integers by at least 1), for the sensitivity check."""
    if isinstance(value, bool) or not isinstance(value, (int, float, tuple)):
        return None
    if isinstance(value, tuple):
        return tuple(v * 1.1 for v in value)
    if isinstance(value, int):
        return value + max(1, round(0.1 * abs(value)))
    return value * 1.1 if value != 0 else 0.01


def scenarios(cls, name):
    """``(value, others, nearby)`` triples for the field ``name`` of ``cls``."""
    if name in SCENARIOS:
        own = {f.name for f in dataclasses.fields(cls)}
        return [(s[0], {k: v for k, v in s[1].items() if k in own}, s[2] if len(s) > 2 else nearby(s[0]))
                for s in SCENARIOS[name]]
    value = getattr(BASE[cls], name)
    value = not value if isinstance(value, bool) else value * 1.3 if value != 0 else 0.02
    return [(value, {}, nearby(value))]


def pin_device_field(cls, name):
    default = next(f for f in dataclasses.fields(cls) if f.name == name)
    default = default.default if default.default is not dataclasses.MISSING else default.default_factory()

    def check():
        for value, others, near in scenarios(cls, name):
            dev = BASE[cls].replace(**others, **{name: value})
            assert_code_matches_reference(dev)
            for other in (default, near):
                if other is None or other == value:
                    continue
                try:
                    moved = BASE[cls].replace(**others, **{name: other})
                except ValueError:  # outside the allowed range
                    continue
                gap = distance(ref_observe(dev), ref_observe(moved))
                assert gap > 50, f"{cls.__name__}.{name}: {value!r} vs {other!r} barely changes the reference"
    return check


PINS = {f"{cls.__name__}.{f.name}": pin_device_field(cls, f.name)
        for cls in D.PULSED_DEVICES for f in dataclasses.fields(cls)
        if f"{cls.__name__}.{f.name}" not in EXEMPT}


# ---- the ideal device and the tile config -----------------------------------------------------------

def ideal_ops(**kw):
    """Decay, diffusion and reset of an ideal device, code and reference (the tile key names the draws)."""
    dev = D.IdealDevice(**kw)
    tile = AnalogTile(*SHAPE, TileConfig(device=dev), seed=TILE_SEED)
    key = rng.seed_key(TILE_SEED, 0)
    tile.set_weights(W0.astype(F32))
    w = W0.astype(F32).astype(np.float64)
    tile.decay(0.5)
    w = w * (1 - 0.5 / dev.lifetime) if dev.lifetime > 1 else w
    decayed = tile.get_weights()
    tile.diffuse()
    w_diffused = w + dev.diffusion * rng.normal_array(key, S.DIFFUSION, SHAPE, c1=0)
    diffused = tile.get_weights()
    tile.reset_columns(1, 2)
    w_reset = w_diffused.copy()
    w_reset[:, 1:3] = (dev.reset_std * rng.normal_array(key, S.RESET, SHAPE, c1=1, c2=1))[:, 1:3]
    return (decayed, diffused, tile.get_weights()), (w, w_diffused, w_reset)


def pin_ideal(name, value):
    def check():
        code, ref = ideal_ops(**{name: value})
        _, default_ref = ideal_ops()
        for c, r in zip(code, ref):
            np.testing.assert_allclose(c, r, rtol=1e-6, atol=1e-7)
        assert any(np.abs(r - d).max() > 1e-4 for r, d in zip(ref, default_ref))
    return check


PINS.update({"IdealDevice.lifetime": pin_ideal("lifetime", 20.0),
             "IdealDevice.diffusion": pin_ideal("diffusion", 0.05),
             "IdealDevice.reset_std": pin_ideal("reset_std", 0.2)})


def pin_tile_config(name):
    """Each direction uses its own config: out_scale 2 forward, 3 backward; the update config's pulse type
    NONE gives the exact SGD step; the device config decides the hidden parameters."""
    def check():
        w = W0.astype(F32)
        cfg = TileConfig(device=D.ConstantStepDevice(w_max=5, w_min=-5, w_max_dtod=0, w_min_dtod=0),
                         forward=IOParameters(is_perfect=True, out_scale=2.0),
                         backward=IOParameters(is_perfect=True, out_scale=3.0),
                         update=UpdateParameters(pulse_type="none"))
        tile = AnalogTile(*SHAPE, cfg, seed=1)
        tile.set_weights(w)
        x, d = np.ones((2, SHAPE[1]), F32), np.ones((2, SHAPE[0]), F32)
        if name == "forward":
            np.testing.assert_allclose(tile.forward(x), 2 * x @ w.T.astype(np.float64), rtol=1e-6, atol=1e-6)
        elif name == "backward":
            np.testing.assert_allclose(tile.backward(d), 3 * d @ w.astype(np.float64), rtol=1e-6, atol=1e-6)
        elif name == "update":
            tile.update(x, d, 0.1)
            np.testing.assert_allclose(tile.get_weights(), w - 0.1 * d.T @ x, rtol=1e-6, atol=1e-7)
        else:
            dev = D.ConstantStepDevice(dw_min=0.02)
            tile = AnalogTile(*SHAPE, TileConfig(device=dev), seed=1)
            assert np.allclose(tile.hidden_parameters()["dwmin_up"].mean(), 0.02, rtol=0.2)
            assert np.allclose(ref_sample(dev, SHAPE, rng.seed_key(1, 1))["dwmin_up"],
                               tile.hidden_parameters()["dwmin_up"], rtol=1e-6)
    return check


PINS.update({f"TileConfig.{name}": pin_tile_config(name) for name in ("device", "forward", "backward", "update")})


@pytest.mark.parametrize("cls", D.PULSED_DEVICES, ids=lambda c: c.__name__)
def test_base_configs_match_the_reference(cls):
    assert_code_matches_reference(BASE[cls])


@pytest.mark.parametrize("name", sorted(PINS))
def test_pin(name):
    PINS[name]()


def test_the_distance_can_fail():
    a = ref_observe(BASE[D.ConstantStepDevice])
    b = dict(a, trace=a["trace"] * (1 + 1e-4))
    assert distance(a, a) == 0 and distance(b, a) > 1
    assert isinstance(BASE[D.ConstantStepDevice], Config)
