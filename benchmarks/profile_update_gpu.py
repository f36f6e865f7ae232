"""Time each kernel of one GPU tile.update (4096 x 4096) separately: where does the update time go?

Usage: ``python benchmarks/profile_update_gpu.py``. Prints milliseconds per launch (median of 5) for the
update-management, pulse-train and pulsed-update kernels, for the workloads of bench_gpu.py.
"""

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gpu  # noqa: E402  (the shared workloads)


def main():
    import cupy as cp
    from crossbar import AnalogTile, TileConfig
    from crossbar.physics import pulses, rng
    from crossbar.cuda import kernels as _cuda
    from crossbar.physics.devices import ConstantStepDevice
    size, batch = 4096, 1024
    for dev in (ConstantStepDevice(dw_min_std=0.3), ConstantStepDevice(dw_min_std=0.0)):
        tile = AnalogTile(size, size, TileConfig(device=dev), seed=1, backend="cupy")
        for workload in ("mnist-like", "dense"):
            x, d, lr = bench_gpu.workload(cp, workload, batch, size)
            cfg, what = tile.config.update, "profile"
            ctr, key = tile._counter("update"), tile.key
            dw = dev.granularity()
            nwords = max(math.ceil(pulses.max_train_length(lr, dw, cfg) / 31), 1)
            timings = {}

            def timed(name, fn):
                start, stop = cp.cuda.Event(), cp.cuda.Event()
                out = fn()
                ts = []
                for _ in range(5):
                    start.record()
                    out = fn()
                    stop.record()
                    stop.synchronize()
                    ts.append(cp.cuda.get_elapsed_time(start, stop))
                timings[name] = float(np.median(ts))
                return out
            bl, sd, sx = timed("update_management", lambda: _cuda.update_management(x, d, lr, dw, cfg, what))
            wx = timed("pulse_trains x", lambda: _cuda.pulse_trains(x, bl, sx, cfg, rng.Stream.X_BITS, 0, key, ctr,
                                                                     nwords, what))
            wd = timed("pulse_trains d", lambda: _cuda.pulse_trains(d, bl, sd, cfg, rng.Stream.D_BITS, 1, key, ctr,
                                                                     nwords, what))
            timed("whole update", lambda: tile.update(x, d, lr))
            nz = float(cp.count_nonzero(wx & 0x7FFFFFFF)) / wx.size, float(cp.count_nonzero(wd & 0x7FFFFFFF)) / wd.size
            print(f"std {dev.dw_min_std} {workload}: non-empty trains x {nz[0]:.3f} d {nz[1]:.3f}; BL mean "
                  f"{float(bl.mean()):.1f}; " + ", ".join(f"{k} {v:.3f} ms" for k, v in timings.items()), flush=True)
        tile = None
        cp.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
