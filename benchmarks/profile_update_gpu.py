"""Time each kernel of one GPU tile.update (4096 x 4096) separately: where does the update time go?

Usage: ``python benchmarks/profile_update_gpu.py``. Prints milliseconds per launch (median of 5) for the
update-management, pulse-train and pulsed-update kernels, for the workloads of bench_gpu.py.
"""

import math

import numpy as np


def main():
    import cupy as cp
    from crossbar import AnalogTile, TileConfig, _cuda, rng
    from crossbar.devices import ConstantStepDevice
    size, batch = 4096, 1024
    for dev in (ConstantStepDevice(dw_min_std=0.3), ConstantStepDevice(dw_min_std=0.0)):
        tile = AnalogTile(size, size, TileConfig(device=dev), seed=1, backend="cupy")
        for workload in ("mnist-like", "dense"):
            u = cp.asarray(rng.uniform_array(rng.seed_key(3), 0, (batch, size)))
            if workload == "mnist-like":
                keep = cp.asarray(rng.uniform_array(rng.seed_key(4), 0, (batch, size))) < 0.19
                x = cp.where(keep, u, 0).astype(cp.float32)
                d = cp.asarray(rng.normal_array(rng.seed_key(5), 0, (batch, size))) * np.float32(1e-3)
                lr = 0.05
            else:
                x = (u * 2 - 1).astype(cp.float32)
                d = (cp.asarray(rng.uniform_array(rng.seed_key(6), 0, (batch, size))) * 2 - 1).astype(cp.float32)
                lr = 1.0
            cfg, what = tile.config.update, "profile"
            ctr, key = tile.device_counters["update"], tile.key
            dw = dev.granularity()
            nwords = max(math.ceil(_cuda.max_train_length(lr, dw, cfg) / 31), 1)
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
        del tile
        cp.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
