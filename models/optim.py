"""Optimizers and learning-rate schedules.

``SGD`` updates digital parameters in place, ``p -= lr * p.grad`` (float32, no copies of ``p``).
``AnalogSGD`` is the analog trainer of the layer contract (:mod:`models.layers`): for each analog layer it
drains the ``(x, d)`` pairs that backward recorded and applies them as pulsed updates ``tile.update(x, d, lr)``
(``W -= lr d^T x``), updates the digital parameters (digital biases, digital layers) by plain SGD, then calls
every tile's ``post_update_step()`` once (the devices' per-mini-batch decay and diffusion).

Schedules are epoch-based and stateless apart from the epoch count: ``lr(epoch) = base_lr * factor(epoch)``,
so a resumed run gets exactly the learning rates of an uninterrupted one. Call ``scheduler.step()`` after
each epoch, as in PyTorch. Every optimizer and scheduler has ``state_dict()``/``load_state_dict()`` of
plain numbers (JSON-ready) for checkpoints.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import numpy as np

from .autograd import Tensor
from .layers import Module


def _check_lr(lr: float) -> float:
    lr = float(lr)
    if not np.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0, got {lr}")
    return lr


class Optimizer:
    """Base: holds the learning rate and the number of steps taken."""

    def __init__(self, lr: float):
        self.lr = _check_lr(lr)
        self.steps = 0

    def zero_grad(self) -> None:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "lr": self.lr, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        if state.get("type") != type(self).__name__:
            raise ValueError(f"optimizer state is for {state.get('type')!r}, not {type(self).__name__}")
        self.lr, self.steps = _check_lr(state["lr"]), int(state["steps"])


def _sgd_update(params: Sequence[Tensor], lr: float) -> None:
    for p in params:
        if p.grad is None:
            continue
        # lr in the parameter's dtype (float32): the same arithmetic as AnalogTile.update's W -= lr d^T x
        p.data -= p.grad.dtype.type(lr) * p.grad


class SGD(Optimizer):
    """Plain stochastic gradient descent on digital parameters.

    Args:
        params: the parameters (e.g. ``model.parameters()``).
        lr: learning rate.
    """

    def __init__(self, params: Iterable[Tensor], lr: float):
        super().__init__(lr)
        self.params = _unique(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        _sgd_update(self.params, self.lr)
        self.steps += 1


class AnalogSGD(Optimizer):
    """SGD for a model with analog layers: pulsed updates on the tiles, plain SGD on the rest.

    Args:
        model: the model; its ``analog_layers()`` and ``parameters()`` are trained.
        lr: learning rate (the same for analog and digital parameters).
    """

    def __init__(self, model: Module, lr: float):
        super().__init__(lr)
        self.model = model
        self.analog = model.analog_layers()
        self.params = _unique(model.parameters())

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
        for layer in self.analog:
            layer.pending.clear()

    def step(self) -> None:
        for layer in self.analog:
            for x, d in layer.pending:
                layer.tile.update(x, d, self.lr)
            layer.pending.clear()
        _sgd_update(self.params, self.lr)
        for layer in self.analog:
            layer.tile.post_update_step()
        self.steps += 1


def _unique(params: Iterable[Tensor]) -> list[Tensor]:
    out, seen = [], set()
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters must be Tensors, got {type(p).__name__}")
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


# ---- learning-rate schedules (per epoch) ----------------------------------------------------------


class LRScheduler:
    """Sets ``optimizer.lr = base_lr * factor(epoch)``; ``step()`` ends an epoch (PyTorch's convention).

    Attributes:
        base_lr: the optimizer's lr at construction.
        epoch: number of completed epochs (``step()`` calls).
    """

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0
        self._apply()

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based)."""
        return self.base_lr * self.factor(epoch)

    def _apply(self) -> None:
        self.optimizer.lr = self.lr_at(self.epoch)

    def step(self) -> None:
        self.epoch += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "base_lr": self.base_lr, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        if state.get("type") != type(self).__name__:
            raise ValueError(f"scheduler state is for {state.get('type')!r}, not {type(self).__name__}")
        self.base_lr, self.epoch = _check_lr(state["base_lr"]), int(state["epoch"])
        self._apply()


class ConstantLR(LRScheduler):
    """The same learning rate every epoch."""

    def factor(self, epoch: int) -> float:
        return 1.0


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs: ``gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        if not 0 < gamma:
            raise ValueError(f"StepLR: gamma must be > 0, got {gamma!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def factor(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch: ``gamma ** #{m <= epoch}``.

    Gokmen & Vlasov 2016 (lr 0.01, 0.005, 0.0025 for epochs 1-10, 11-20, 21-30) is
    ``MultiStepLR(opt, [10, 20], 0.5)`` with ``lr=0.01``.
    """

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1):
        ms = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1 for m in ms) \
                or ms != sorted(set(ms)):
            raise ValueError(f"MultiStepLR: milestones must be increasing positive integers, got {milestones!r}")
        if not 0 < gamma:
            raise ValueError(f"MultiStepLR: gamma must be > 0, got {gamma!r}")
        self.milestones, self.gamma = [int(m) for m in ms], float(gamma)
        super().__init__(optimizer)

    def factor(self, epoch: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, epoch)


__all__ = ["SGD", "AnalogSGD", "ConstantLR", "LRScheduler", "MultiStepLR", "Optimizer", "StepLR"]
