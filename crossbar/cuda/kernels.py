"""The only module that loads raw_kernels/ and launches CUDA kernels.

Kernels are compiled at run time by CuPy (NVRTC) from the shipped ``.cu`` sources, once per device and
option set: :func:`module` memoises the ``RawModule`` in the process and CuPy's on-disk kernel cache
(``~/.cupy/kernel_cache``) keeps the binaries across runs. Every kernel has one launch wrapper here that
checks dtypes, contiguity, shapes and device of its arrays and casts every scalar explicitly (CuPy passes a
Python float as a double and an int as a 64-bit integer).

Bit-identity with the NumPy reference: the update and IO kernels are compiled with ``--fmad=false`` so that
``a * b + c`` rounds twice, as NumPy does.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import numpy as np

from ..physics import io, pulses
from ..backend import get_xp, register
from ..config import BoundManagement, PulseType, WeightNoiseType
from ..physics.io import io_plan
from ..physics.devices.base import CUDA_STEPS, STEPS
from ..physics.rng import Stream

KERNEL_DIR = Path(__file__).resolve().parents[2] / "raw_kernels"
OPTIONS = ("--std=c++17", "--fmad=false")
#: seconds spent compiling (or loading from CuPy's disk cache) each module on first use, for benchmarks
COMPILE_SECONDS: dict = {}
_BLOCK = 256


def _cp():
    return get_xp("cupy")


@functools.cache
def _module_cached(name: str, device_id: int, options: tuple, steps: tuple, step_sources: tuple):
    cp = _cp()
    t0 = time.perf_counter()
    mod = cp.RawModule(code=kernel_source(name, step_sources), options=options + (f"-I{KERNEL_DIR}",),
                       name_expressions=[update_kernel_name(n) for n in steps] or None)
    mod.compile()
    COMPILE_SECONDS[name] = time.perf_counter() - t0
    return mod


def kernel_source(name: str, step_sources=()) -> str:
    """The source of ``raw_kernels/<name>.cu`` followed by the given CUDA step structs (in namespace ``xb``)."""
    return (KERNEL_DIR / f"{name}.cu").read_text() + "".join(
        f"\nnamespace xb {{\n{text}\n}}  // namespace xb\n" for text in step_sources if text)


def update_kernel_name(step_name: str) -> str:
    """The instance of pulses.cu's update kernel template for a device's step function."""
    return f"pulsed_update<xb::{step_name}>"


def module(name: str, options: tuple = OPTIONS):
    """The compiled ``raw_kernels/<name>.cu`` for the current device (compiled once, then cached). The pulses
    module instantiates its update kernel for every registered step function
    (:data:`crossbar.physics.devices.base.STEPS`), with the CUDA twins that devices.cuh does not hold appended."""
    steps = tuple(STEPS) if name == "pulses" else ()
    sources = tuple(CUDA_STEPS.get(n, "") for n in steps)
    return _module_cached(name, _cp().cuda.Device().id, tuple(options), steps, sources)


def kernel(module_name: str, name: str):
    return module(module_name).get_function(name)


def check(name: str, a, dtype, shape=None):
    """Raise ``ValueError`` unless ``a`` is a C-contiguous CuPy array of ``dtype`` (and ``shape``) on the
    current device."""
    cp = _cp()
    if not isinstance(a, cp.ndarray):
        raise ValueError(f"{name}: expected a cupy array, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(a.shape)}")
    if a.device.id != cp.cuda.Device().id:
        raise ValueError(f"{name}: array lives on GPU {a.device.id}, current device is {cp.cuda.Device().id}")
    return a


def launch(fn, grid, block, args, what: str, shared_mem: int = 0):
    """Launch a kernel; turn a CUDA error into a ``RuntimeError`` that says what was being done."""
    cp = _cp()
    try:
        fn(grid, block, args, shared_mem=shared_mem)
    except cp.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(f"GPU out of memory in {what}: {exc}") from exc
    except (cp.cuda.driver.CUDADriverError, cp.cuda.runtime.CUDARuntimeError) as exc:
        raise RuntimeError(f"CUDA error in {what}: {exc}") from exc


@functools.cache
def _dummy_cached(dtype: str, device_id: int):
    return _cp().zeros(1, dtype)


def _dummy(dtype):
    """A one-element array passed where a kernel's optional pointer argument is unused (CuPy has no NULL)."""
    return _dummy_cached(np.dtype(dtype).str, _cp().cuda.Device().id)


def blocks(n: int, block: int = _BLOCK) -> tuple:
    return (max(1, math.ceil(n / block)),)


# ---- pulsed update ----------------------------------------------------------------------------------
def update_management(x, d, lr: float, dw: float, cfg, what: str):
    """Per-sample BL and probability scales (twin of :func:`crossbar.physics.pulses.update_management`)."""
    cp = _cp()
    batch = x.shape[0]
    bl = cp.empty(batch, np.int32)
    sd, sx = cp.empty(batch, np.float32), cp.empty(batch, np.float32)
    args = (x, d, np.int32(x.shape[1]), np.int32(d.shape[1]), np.float32(abs(lr)), np.float32(dw),
            np.float32(cfg.desired_bl), np.float32(cfg.um_grad_scale), np.int32(cfg.fixed_bl),
            np.int32(cfg.update_bl_management), np.int32(cfg.um_on), bl, sd, sx)
    launch(kernel("pulses", "update_management"), (batch,), (256,), args, what)
    return bl, sd, sx


def pulse_trains(v, bl, scale, cfg, stream: int, round_c2: int, key, ctr, nwords: int, what: str):
    """Packed pulse trains ``(batch, nwords, size)`` uint32 of the lines of ``v`` (see pulses.cu)."""
    cp = _cp()
    batch, size = v.shape
    words = cp.empty((batch, nwords, size), np.uint32)
    args = (v, np.int32(size), np.int32(batch), bl, scale, np.float32(pulses.resolution(cfg.res)),
            np.int32(cfg.sto_round), np.uint32(stream), np.uint32(round_c2), np.uint32(key[0]), np.uint32(key[1]),
            ctr, np.int32(nwords), words)
    launch(kernel("pulses", "pulse_trains"), blocks(batch * size), (_BLOCK,), args, what)
    return words


@register("pulsed_update", "cupy")
def pulsed_update(weights, stack, x, d, lr: float, plan, key, ctr, pulse_counts=None, snap=None, only: int = 0):
    """Apply ``update(x, d, lr)`` to ``weights`` (float32 ``(out, in)``) and the parameter stack ``stack``
    (``(n, out, in)``) on the GPU: stochastic trains, or dense signed counts for the deterministic pulse types;
    sample numbers from the device counter ``ctr`` (the caller advances it). ``plan``:
    :class:`crossbar.physics.pulses.UpdatePlan`; ``snap`` and ``only``: as :func:`crossbar.physics.pulses.pulsed_update`
    (int32 ``(in,)``, int32 ``(in,)``, float32 ``(n, out)``, int32 ``(in,)``)."""
    cp = _cp()
    dev, cfg = plan.device, plan.cfg
    (batch, in_size), out_size = x.shape, weights.shape[0]
    what = f"pulsed update of a {out_size} x {in_size} tile (batch {batch})"
    check("x", x, np.float32, (batch, in_size))
    check("d", d, np.float32, (batch, out_size))
    check("stack", stack, np.float32, (len(plan.rows), out_size, in_size))
    dw = dev.granularity()
    counts = None
    if cfg.pulse_type == PulseType.STOCHASTIC_COMPRESSED:
        nwords = max(math.ceil(pulses.max_train_length(lr, dw, cfg) / 31), 1)
        bl, sd, sx = update_management(x, d, lr, dw, cfg, what)
        wx = pulse_trains(x, bl, sx, cfg, Stream.X_BITS, 0, key, ctr, nwords, what)
        wd = pulse_trains(d, bl, sd, cfg, Stream.D_BITS, 1, key, ctr, nwords, what)
    else:
        bl, sd, sx = update_management(x, d, lr, dw, cfg, what)
        counts = check("counts", pulses.deterministic_counts(x, d, bl, sd, sx, cfg, lr < 0, xp=cp), np.int32)
        nwords, bl, wx, wd = 1, cp.zeros(batch, np.int32), _dummy(np.uint32), _dummy(np.uint32)
    rows, pc = plan.rows, pulse_counts
    args = (weights, stack, np.int64(weights.size), plan.constants, wx, wd,
            _dummy(np.int32) if counts is None else counts, np.int32(counts is not None), bl, np.int32(batch),
            np.int32(out_size), np.int32(in_size), np.int32(nwords), np.uint32(key[0]), np.uint32(key[1]), ctr,
            np.int32(lr < 0), np.int32(dev.summing()), np.int32(rows.get("reference", -1) if dev.has_reference else -1),
            np.int32(rows.get("persistent_weights", -1)), np.float32(dev.write_noise_std * dev.dw_min),
            _dummy(np.int64) if pc is None else pc["up"], _dummy(np.int64) if pc is None else pc["down"],
            np.int32(pc is not None))
    if snap is None:
        args += (_dummy(np.int32), _dummy(np.int32), _dummy(np.float32), _dummy(np.int32), np.int32(0))
    else:
        snap_at, snap_slot, snap_out, flip_after = snap
        for name, a in (("snap_at", snap_at), ("snap_slot", snap_slot), ("flip_after", flip_after)):
            check(name, a, np.int32, (in_size,))
        args += (snap_at, snap_slot, check("snap_out", snap_out, np.float32), flip_after, np.int32(1))
    args += (np.int32(only),)
    chunk = max(1, 32 // nwords)
    grid = (math.ceil(in_size / 32), math.ceil(out_size / 8))
    launch(kernel("pulses", update_kernel_name(dev.step_name)), grid, (_BLOCK,), args, what,
           shared_mem=4 * chunk * nwords * (32 + 8))


# ---- random numbers -----------------------------------------------------------------------------------
def philox_words(key, c0, c1: int, c2: int, c3: int, normals: bool = False):
    """``(4, n)`` Philox words (uint32) or the four normals of each counter (float32) for counters
    ``(c0[t], c1, c2, c3)``: the twins of :func:`crossbar.physics.rng.philox4x32` and :func:`crossbar.physics.rng.normal`."""
    cp = _cp()
    c0 = check("c0", cp.ascontiguousarray(c0, dtype=np.uint32), np.uint32)
    n = c0.size
    out = cp.empty((4, n), np.float32 if normals else np.uint32)
    args = (c0, np.int64(n), np.uint32(c1), np.uint32(c2), np.uint32(c3), np.uint32(key[0]), np.uint32(key[1]),
            np.int32(normals), out)
    launch(kernel("rng", "philox_words"), blocks(n), (_BLOCK,), args, "philox_words")
    return out


def philox_normals(key, c0, c1: int, c2: int, c3: int):
    return philox_words(key, c0, c1, c2, c3, normals=True)


@register("random_rows", "cupy")
def random_rows(key, stream: int, batch: int, size: int, sample0: int = 0, c2: int = 0, normals: bool = True,
                ctr=None):
    """``(batch, size)`` float32 normals or uniforms named as :func:`crossbar.physics.rng.normal_rows`; the first
    sample number is ``ctr[0] + sample0`` when a device counter ``ctr`` is given (graph replays), else
    ``sample0``."""
    cp = _cp()
    out = cp.empty((batch, size), np.float32)
    groups = (size + 3) // 4
    args = (np.uint32(key[0]), np.uint32(key[1]), np.uint32(stream), np.int32(batch), np.int32(size),
            _dummy(np.uint64) if ctr is None else ctr, np.int32(ctr is not None), np.uint64(sample0),
            np.uint32(c2), np.int32(normals), out)
    launch(kernel("rng", "random_rows"), blocks(batch * groups), (_BLOCK,), args, "random_rows")
    return out


# ---- IO-managed MVM ---------------------------------------------------------------------------------
_FUSED_NM = {"none": 0, "abs_max": 1, "max": 2, "constant": 3}
_FUSED_MAX_SHARED = 48 * 1024
#: the fused kernel is chosen up to this many multiply-adds per call (above it cuBLAS wins); a pure function
#: of the shapes, so a kernel choice never depends on a timing race and is the same at every run
FUSED_MAX_MACS = 2**28


def fused_mvm_supported(cfg, n_in: int, n_out: int) -> bool:
    """Whether :func:`io_mvm` implements ``cfg`` (the common settings) at this size."""
    if _mvm_shared(n_in, n_out) > _FUSED_MAX_SHARED:
        return False
    if cfg.is_perfect:
        return True
    return (cfg.noise_management.value in _FUSED_NM
            and cfg.bound_management in (BoundManagement.NONE, BoundManagement.ITERATIVE)
            and cfg.ir_drop == 0 and cfg.out_nonlinearity == 0 and cfg.v_offset_std == 0 and cfg.r_series == 0
            and cfg.out_noise_std == 0)


def _mvm_shared(n_in: int, n_out: int) -> int:
    """Bytes of shared memory of one io_mvm block: the input twice, the outputs, 2 x 8 x 32 partial sums."""
    return 4 * (2 * n_in + n_out + 512)


#: below this batch size the fused MVM splits each sample's outputs over blocks of 32 (a pure function of
#: the batch size): small batches would otherwise leave most of the GPU idle
SPLIT_BELOW_BATCH = 128


def use_fused_mvm(cfg, n_in: int, n_out: int, batch: int) -> bool:
    """Kernel choice for one MVM: fused kernel for supported configs and moderate sizes, else the xp reference
    around cuBLAS."""
    return fused_mvm_supported(cfg, n_in, n_out) and batch * n_in * n_out <= FUSED_MAX_MACS


@register("mvm", "cupy")
def mvm(w, x, cfg, key, ctr, transposed: bool, state):
    """The IO-managed MVM of a tile on the GPU (twin of :func:`crossbar.physics.io.counted_mvm`): the fused kernel
    for the common settings and moderate sizes, else DAC kernel, cuBLAS and ADC kernel; the xp reference around
    cuBLAS for the rarer settings and for bound management once a sample exceeded the output range (a host check)."""
    out_size, in_size = w.shape
    n_in, n_out = (out_size, in_size) if transposed else (in_size, out_size)
    what = f"{'backward' if transposed else 'forward'} MVM of a {out_size} x {in_size} tile (batch {x.shape[0]})"
    if use_fused_mvm(cfg, n_in, n_out, x.shape[0]):
        return io_mvm(w, x, cfg, key, ctr, transposed, what)
    if gemm_mvm_supported(cfg):
        y, exceeded = io_mvm_gemm(w, x, cfg, key, ctr, transposed, what)
        if not (io_plan(cfg, transposed).bm_on and bool(exceeded.any())):
            return y
    return io.mvm(w, x, cfg, key, int(ctr[0]), transposed=transposed, state=state, xp=_cp())


def io_mvm(w, x, cfg, key, ctr, transposed: bool, what: str):
    """The fused IO-managed MVM (see mvm.cu): ``(batch, n_in)`` -> ``(batch, n_out)``; sample numbers from the
    device counter ``ctr`` (the caller advances it)."""
    cp = _cp()
    out_size, in_size = w.shape
    n_in, n_out = (out_size, in_size) if transposed else (in_size, out_size)
    batch = x.shape[0]
    check("weights", w, np.float32)
    check("x", x, np.float32, (batch, n_in))
    y = cp.empty((batch, n_out), np.float32)
    if batch == 0:
        return y
    f32 = np.float32
    if cfg.is_perfect:
        params = (0, 0.0, 0.0, 3.4e38, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, cfg.out_scale, 0, 0, 0.0, 0, 0, 1)
    else:
        wn = {WeightNoiseType.NONE: 0, WeightNoiseType.ADDITIVE_CONSTANT: 1, WeightNoiseType.PCM_READ: 2}
        wtype = wn[cfg.w_noise_type] if cfg.w_noise > 0 else 0
        plan = io_plan(cfg, transposed)
        rounds = len(plan.schedule)
        params = (_FUSED_NM[cfg.noise_management.value], cfg.nm_thres, plan.inp_step, cfg.inp_bound, cfg.inp_noise,
                  cfg.inp_asymmetry, int(cfg.inp_sto_round), plan.out_step, max(cfg.out_bound, 0.0), cfg.out_noise,
                  cfg.out_asymmetry, cfg.out_scale, int(cfg.out_sto_round), wtype, cfg.w_noise, int(rounds > 1),
                  int(cfg.bm_test_negative_bound), rounds)
    types = (np.int32, f32, f32, f32, f32, f32, np.int32, f32, f32, f32, f32, f32, np.int32, np.int32, f32,
             np.int32, np.int32, np.int32)
    head = (w, np.int32(out_size), np.int32(in_size), x, np.int32(batch), np.int32(transposed), y,
            *(t(v) for t, v in zip(types, params)), np.uint32(key[0]), np.uint32(key[1]), ctr)
    fn = kernel("mvm", "io_mvm")
    tiles = math.ceil(n_out / 32)
    if batch < SPLIT_BELOW_BATCH and tiles > 1:
        # round 0 spread over (sample, 32 outputs) blocks; flagged samples redo rounds 1.. in one block each
        flags = cp.zeros(batch, np.int32)
        launch(fn, (batch, tiles), (256,), head + (np.int32(0), flags), what, shared_mem=_mvm_shared(n_in, 32))
        if params[-1] > 1:
            launch(fn, (batch, 1), (256,), head + (np.int32(1), flags), what, shared_mem=_mvm_shared(n_in, n_out))
    else:
        launch(fn, (batch, 1), (256,), head + (np.int32(0), _dummy(np.int32)), what,
               shared_mem=_mvm_shared(n_in, n_out))
    return y


def gemm_mvm_supported(cfg) -> bool:
    """Settings the DAC/ADC kernels around cuBLAS implement (the fused set minus PCM read noise)."""
    return (not cfg.is_perfect and fused_mvm_supported(cfg, 0, 0)
            and not (cfg.w_noise > 0 and cfg.w_noise_type == WeightNoiseType.PCM_READ))


def io_mvm_gemm(w, x, cfg, key, ctr, transposed: bool, what: str):
    """Round 0 of the IO-managed MVM as DAC kernel, cuBLAS GEMM, ADC kernel (eager; large tiles).

    Returns:
        ``(y, exceeded)``: float32 outputs and an int32 per-sample flag (bound management must redo the
        samples that exceeded the output range; the caller decides, since that needs a host check).
    """
    cp = _cp()
    batch, n_in = x.shape
    n_out = w.shape[1] if transposed else w.shape[0]
    check("weights", w, np.float32)
    check("x", x, np.float32, (batch, n_in))
    f32, i32 = np.float32, np.int32
    xs = cp.empty_like(x)
    div, norm = cp.empty(batch, f32), cp.empty(batch, f32)
    zero, exceeded = cp.empty(batch, i32), cp.zeros(batch, i32)
    tdir = np.uint32(transposed)
    want_norm = cfg.w_noise > 0 and cfg.w_noise_type == WeightNoiseType.ADDITIVE_CONSTANT
    args = (x, i32(batch), i32(n_in), i32(_FUSED_NM[cfg.noise_management.value]), f32(cfg.nm_thres),
            f32(io_plan(cfg, transposed).inp_step), f32(cfg.inp_bound), f32(cfg.inp_noise),
            f32(cfg.inp_asymmetry), i32(cfg.inp_sto_round), i32(want_norm), tdir, np.uint32(key[0]),
            np.uint32(key[1]), ctr, xs, div, norm, zero)
    launch(kernel("mvm", "io_prepare"), (batch,), (256,), args, what)
    try:
        y = xs @ (w if transposed else w.T)
    except cp.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(f"GPU out of memory in {what}: {exc}") from exc
    args = (y, i32(batch), i32(n_out), div, norm, zero, f32(cfg.w_noise if want_norm else 0.0), f32(cfg.out_asymmetry),
            f32(cfg.out_noise), f32(io_plan(cfg, transposed).out_step), f32(max(cfg.out_bound, 0.0)),
            i32(cfg.out_sto_round), i32(cfg.bm_test_negative_bound), f32(cfg.out_scale), tdir, np.uint32(key[0]),
            np.uint32(key[1]), ctr, exceeded)
    launch(kernel("mvm", "io_finalize"), blocks(batch * ((n_out + 3) // 4)), (_BLOCK,), args, what)
    return y, exceeded


@register("philox_arrays", "cupy")
def philox_arrays(key, c0, c1, c2: int, c3: int):
    """``(4, n)`` Philox words of counters ``(c0[t], c1[t], c2, c3)`` for device arrays ``c0, c1`` (no
    host-to-device copy, so it can run inside a CUDA-graph capture)."""
    cp = _cp()
    c0 = check("c0", cp.ascontiguousarray(c0.ravel(), dtype=np.uint32), np.uint32)
    c1 = check("c1", cp.ascontiguousarray(c1.ravel(), dtype=np.uint32), np.uint32, c0.shape)
    n = c0.size
    out = cp.empty((4, n), np.uint32)
    args = (c0, c1, np.int64(n), np.uint32(c2), np.uint32(c3), np.uint32(key[0]), np.uint32(key[1]), out)
    launch(kernel("rng", "philox_arrays"), blocks(n), (_BLOCK,), args, "philox_arrays")
    return out
