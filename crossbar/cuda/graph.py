"""Replay a whole training step as one CUDA graph (CuPy backend; no host synchronisation inside a step).

A training step launches a few hundred small kernels (three layers of fused IO-managed MVMs, autograd
elementwise ops, update management, pulse trains, pulsed updates). Eagerly each launch costs ~7 us of
host time; replayed from a CUDA graph ~1 us. :class:`GraphStep` runs the step once eagerly (compiling the
kernels), captures it once into a graph on a private stream and memory pool, then replays it for every batch
of the same shape: the batch is copied into static input buffers, the graph is launched, and the loss is
accumulated on the device. Nothing reads device memory on the host.

What makes this possible: every random number is named by counters that the kernels read from device memory
(the tiles' ``counter_array``, advanced by device operations inside the graph), so each replay draws fresh
numbers exactly as an eager step would; and the step uses no cuBLAS or cuRAND call (CuPy refuses those during
capture). What a tile keeps on the host (the transfer pointers of compound tiles) follows the replays through
``tile.replayed(count)``, so checkpoints stay exact.

If capture fails (a configuration that needs cuBLAS, such as digital layers or an MVM setting outside the
fused kernel), :class:`GraphStep` says why once and runs the step eagerly.
"""

from __future__ import annotations

import sys

from ..backend import register


class GraphStep:
    """Call ``step(model, optimizer, x, y) -> loss`` through a CUDA graph.

    Args:
        step: the eager training step, returning the batch's mean loss as a 0-d device array.
        model: the model (its analog tiles' host-side progress is kept in step with the replays).
        optimizer: the optimizer (its ``lr`` is baked into the graph: a new lr re-captures).
        xp: the array module (``cupy``).

    Losses are summed on the device; :meth:`take_loss_sum` reads the sum once.
    """

    def __init__(self, step, model, optimizer, xp):
        self.step, self.model, self.optimizer, self.xp = step, model, optimizer, xp
        self.graph = None
        self.key = None  # (x shape, y shape, lr) the graph was captured for
        self.failed = None  # why capture is impossible (then every call runs eagerly)
        self.replays = 0
        self.loss_sum = xp.zeros((), xp.float32)
        self.stream = xp.cuda.Stream(non_blocking=True)

    def _tiles(self):
        return [layer.tile for layer in self.model.analog_layers()]

    def _capture(self, x, y):
        cp = self.xp
        # static input buffers (None: the step finds its own inputs, as GraphEpoch's does)
        self.x_buf, self.y_buf = (None, None) if x is None else (cp.empty_like(x), cp.empty_like(y))
        self.loss_out = cp.zeros((), cp.float32)
        tiles = self._tiles()
        host = [t._host_state() for t in tiles]
        steps = self.optimizer.steps
        self.pool = cp.cuda.MemoryPool()  # graph-owned memory: never handed to anyone else
        cp.cuda.set_allocator(self.pool.malloc)
        try:
            with self.stream:
                self.stream.begin_capture()
                try:
                    loss = self.step(self.model, self.optimizer, self.x_buf, self.y_buf)
                    self.loss_sum += loss
                finally:
                    graph = self.stream.end_capture()
        finally:
            cp.cuda.set_allocator(cp.get_default_memory_pool().malloc)
            # capturing ran the Python once but executed nothing on the device: undo the host-side advances
            for t, h in zip(tiles, host):
                t._set_host_state(h)
            self.optimizer.steps = steps
        return graph

    def _key(self, x, y):
        return (None if x is None else (x.shape, y.shape), float(self.optimizer.lr))

    def __call__(self, x, y) -> None:
        """One training step on the batch ``(x, y)`` (device arrays, or None for a self-feeding step)."""
        cp = self.xp
        if self.failed is None and self._key(x, y) != self.key:
            # a new shape or lr: this batch trains eagerly (compiling and loading the kernels), then capture
            self.loss_sum += self.step(self.model, self.optimizer, x, y)
            cp.cuda.get_current_stream().synchronize()
            try:
                self.graph = self._capture(x, y)
                self.key = self._key(x, y)
            except Exception as exc:  # capture refused (cuBLAS, a host sync, ...): stay eager
                self.failed = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                print(f"CUDA graph capture is not possible here ({self.failed}); running the training step "
                      "eagerly", file=sys.stderr)
            return
        if self.failed is not None:
            self.loss_sum += self.step(self.model, self.optimizer, x, y)
            return
        self.replay(1, x, y)

    def replay(self, count: int, x=None, y=None) -> None:
        """Replay the captured step ``count`` times (inputs copied in first when given): one pair of stream
        events around all of them, and the tiles' host-side progress advanced once by ``count`` steps."""
        cp = self.xp
        current = cp.cuda.get_current_stream()
        ready = cp.cuda.Event()
        ready.record(current)
        self.stream.wait_event(ready)  # the batch was gathered on the current stream
        with self.stream:
            if x is not None:
                self.x_buf[...] = x
                self.y_buf[...] = y
            for _ in range(count):
                self.graph.launch()
        done = cp.cuda.Event()
        done.record(self.stream)
        current.wait_event(done)  # later eager work (evaluation, the next gather) sees the new weights
        for t in self._tiles():
            t.replayed(count)
        self.optimizer.steps += count
        self.replays += count

    def take_loss_sum(self) -> float:
        """The summed loss of all steps since the last call (one host read), then reset to 0."""
        total = float(self.loss_sum)
        self.loss_sum[...] = 0
        return total


def graph_available() -> bool:
    """True when CuPy can capture graphs here (a CUDA device and a CUDA runtime with graph support)."""
    try:
        import cupy
        return cupy.cuda.runtime.runtimeGetVersion() >= 11000
    except Exception:
        return False


@register("graph_epoch", "cupy")
class GraphEpoch:
    """Whole epochs of full batches replayed from one CUDA graph that also gathers its own batch.

    The graph reads the step number from a device counter, picks its batch's sample indices from the epoch's
    order (a device array of shape ``(steps, batch)``), gathers ``x`` and ``y`` itself, trains, and counts on:
    replaying it ``steps`` times is an epoch with no host work but the launches. A trailing partial batch is
    the caller's (an eager step).

    Args:
        step, model, optimizer, xp: as :class:`GraphStep`.
        x_all, y_all: the whole training set on the device (kept: the graph holds their addresses).
        batch: batch size.
    """

    def __init__(self, step, model, optimizer, xp, x_all, y_all, batch: int):
        self.x_all, self.y_all, self.batch = x_all, y_all, batch
        self.steps = len(x_all) // batch
        self.order = xp.zeros((self.steps, batch), xp.int64)
        self.pos = xp.zeros((), xp.int64)

        def gather_and_step(model_, optimizer_, _x, _y):
            rows = self.order[self.pos]
            loss = step(model_, optimizer_, self.x_all[rows], self.y_all[rows])
            self.pos += 1
            return loss

        self.inner = GraphStep(gather_and_step, model, optimizer, xp)
        self.xp = xp

    def start(self, order, first: int = 0) -> None:
        """Begin an epoch with sample order ``order`` (``(n,)`` ints; its full batches are used) at step ``first``."""
        self.order[...] = self.xp.asarray(order[:self.steps * self.batch]).reshape(self.steps, self.batch)
        self.pos[...] = first

    def run(self, count: int) -> None:
        """Train the next ``count`` batches of the epoch (the first call of a new lr trains one eagerly and
        captures; the rest replay the graph back to back)."""
        inner = self.inner
        while count > 0:
            if inner.failed is None and inner.graph is not None and inner._key(None, None) == inner.key:
                inner.replay(count)
                return
            inner(None, None)
            count -= 1

    def take_loss_sum(self) -> float:
        return self.inner.take_loss_sum()

    def loss_sum(self) -> float:
        """The summed loss of this epoch's steps so far (one host read; not reset)."""
        return float(self.inner.loss_sum)

    @property
    def failed(self):
        return self.inner.failed
