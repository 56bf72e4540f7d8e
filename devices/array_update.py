"""Pulse updates of a :class:`devices.DeviceArray`: requested changes and pulse-train updates.

:class:`PulseUpdates` holds :meth:`~devices.DeviceArray.pulse_request` (the pulse-backprop hot
path) and :meth:`~devices.DeviceArray.pulse_update` (the stochastic pulse-train update); it is a
part of :class:`devices.DeviceArray` (which inherits it), written apart to keep each module
short, and is not used alone: it reads the array's state, kernels and helpers.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _rng
from . import converters as _conv
from .routing import route_code
from .validation import check_choice, check_int, check_real
from .xp import asnumpy, pulse_trains, to_device

__all__ = ["PulseUpdates", "METHODS", "SIDES"]

#: Update methods that route signed pulse counts to the devices.
METHODS = ("bidirectional", "unidirectional")
SIDES = ("both", "plus")


class PulseUpdates:
    """The pulse updates of :class:`devices.DeviceArray` (a part of that class, not used alone)."""

    def pulse_request(
        self,
        dW,
        *,
        method: str = "bidirectional",
        side: str = "both",
        theta: float = 0.5,
        n_max: int | None = None,
        rounding: str = "nearest",
        refresh_threshold: float | None = None,
    ) -> dict:
        """Apply requested weight changes as pulses, in one pass (the pulse-backprop hot path).

        Per synapse, ``r = |dW| / step`` with the nominal step of the direction
        (:meth:`nominal_step`); the count is ``floor(r)`` plus one when ``frac(r) >= theta``
        (``rounding="nearest"``: the dead zone) or with probability ``frac(r)``
        (``"stochastic"``, counter-based draws), capped at ``n_max``, then routed as
        ``method``/``side`` say (``specs/devices.md`` section 5) and written.

        Parameters
        ----------
        dW : array_like, shape (out, in)
            Requested weight changes.
        method : {"bidirectional", "unidirectional"}
        side : {"both", "plus"}
        theta : float
            Dead-zone threshold in (0, 1].
        n_max : int or None
            Cap per synapse and update.
        rounding : {"nearest", "stochastic"}
        refresh_threshold : float or None
            Differential arrays: also flag written pairs that need a refresh at this threshold
            (same rule as :meth:`needs_refresh`).

        Returns
        -------
        dict
            ``pulses`` (device pulses sent) and ``needs_refresh`` (bool mask or None).
        """
        xp = self._xp
        dW = self._asarray("dW", dW, xp.float64)
        if dW.shape != self.shape:
            raise ValueError(f"dW must have shape {self.shape}, got {dW.shape}")
        check_choice("method", method, METHODS)
        check_choice("side", side, SIDES)
        check_choice("rounding", rounding, ("nearest", "stochastic"))
        theta = check_real("theta", theta, lo=0.0, hi=1.0, lo_open=True)
        nm = 0 if n_max is None else check_int("n_max", n_max, lo=1)
        up, dn = self.nominal_step(method, side)
        if self.count == "neurosim":
            dW = self._neurosim_request(dW, method, rounding, theta, up, dn)
            theta = 0.5
        route = route_code(method, self.mapping, side)
        need = xp.zeros(self.out_features * self.in_features, dtype=bool)
        thr = 0.0
        if refresh_threshold is not None and self.mapping == "differential":
            thr = check_real("refresh_threshold", refresh_threshold, lo=0.0, hi=1.0, lo_open=True)
        W = self._clean_weights()  # made current here, kept current by the kernel
        base = self._next_base()
        base_r = self._next_base()
        pulses, bad = self._k.pulse_request(
            self.state, self.params, xp.ascontiguousarray(dW).ravel(), up, dn, theta, nm,
            rounding == "stochastic", route, base, base_r, thr,
            0.5 / self.device.levels("ltp"), self.device.dG, need, W.reshape(-1), self.alpha,
            self._gref_code(),
        )  # fmt: skip
        if bad:
            raise ValueError(
                f"dW contains {bad} NaN or infinite values; those synapses were not updated"
            )
        return {"pulses": pulses, "needs_refresh": need.reshape(self.shape) if thr > 0 else None}

    def _neurosim_request(self, dW, method, rounding, theta, up, dn):
        """``dW`` replaced by whole multiples of the step that round to NeuroSim's counts
        (``count="neurosim"``, :func:`devices.converters.neurosim_counts`)."""
        if rounding != "nearest":
            raise ValueError(f"count='neurosim' needs rounding='nearest', got {rounding!r}")
        if method != "bidirectional":
            raise ValueError(f"count='neurosim' needs method='bidirectional', got {method!r}")
        p_up, p_dn = self.device.levels("ltp"), self.device.levels("ltd")
        return _conv.neurosim_request(dW, p_up, p_dn, up, dn, theta)

    def pulse_update(
        self,
        x,
        d,
        lr: float,
        bl: int = 31,
        *,
        method: str = "bidirectional",
        side: str = "both",
        bl_management: bool = True,
        update_management: bool = True,
    ) -> dict:
        """In-array stochastic pulse-train update (Gokmen-Vlasov, ``specs/devices.md`` 5.4).

        For each sample, Bernoulli pulse trains of length ``BL`` on the rows (``x``) and columns
        (``d``) coincide in the devices; ``count[j, i] ~ Binomial(BL, p_x[i] p_d[j])`` and synapse
        ``(j, i)`` receives ``-sign(x_i) sign(d_j) count`` pulses, so the expected change on a
        linear device is ``-lr d_j x_i``. Samples of a batch are written one after another.

        Parameters
        ----------
        x : array_like, shape (in,) or (batch, in)
            Inputs (forward activations).
        d : array_like, shape (out,) or (batch, out)
            Errors (gradients w.r.t. the outputs).
        lr : float
            Learning rate (> 0).
        bl : int
            Desired pulse-train length, 1 to 256.
        method : {"bidirectional", "unidirectional"}
            Routing of the counts (section 5.1 / 5.2).
        side : {"both", "plus"}
            Differential bidirectional: push-pull or G+ only.
        bl_management, update_management : bool
            aihwkit's train-length and probability balancing.

        Returns
        -------
        dict
            ``coincidences`` (total pulses per device side), ``clipped`` (probabilities clipped
            at 1), ``bl`` (per-sample train lengths).
        """
        x = self._check_vec("x", x, self.in_features)
        d = self._check_vec("d", d, self.out_features)
        xp = self._xp
        x2 = xp.atleast_2d(x)
        d2 = xp.atleast_2d(d)
        if x2.shape[0] != d2.shape[0]:
            raise ValueError(
                f"x and d must have the same batch size, got {x2.shape[0]} and {d2.shape[0]}"
            )
        lr = check_real("lr", lr, lo=0.0, lo_open=True)
        bl = check_int("bl", bl, lo=1, hi=256)
        check_choice("method", method, METHODS)
        check_choice("side", side, SIDES)
        route = route_code(method, self.mapping, side)
        up, dn = self.nominal_step(method, side)
        dw = 0.5 * (up + dn)
        B = x2.shape[0]
        xm = xp.max(xp.abs(x2), axis=1)
        dm = xp.max(xp.abs(d2), axis=1)
        active = (xm > 0) & (dm > 0)
        xm_s = xp.where(active, xm, 1.0)
        dm_s = xp.where(active, dm, 1.0)
        if bl_management:
            BL = xp.clip(xp.ceil(lr * xm_s * dm_s / dw), 1, bl).astype(xp.int64)
        else:
            BL = xp.full(B, bl, dtype=xp.int64)
        C = xp.sqrt(lr / (dw * BL))
        if update_management:
            fx = C * xp.sqrt(dm_s / xm_s)
            fd = C * xp.sqrt(xm_s / dm_s)
        else:
            fx = fd = C
        px_raw = fx[:, None] * xp.abs(x2)
        pd_raw = fd[:, None] * xp.abs(d2)
        clipped = int(
            xp.sum((px_raw > 1) & active[:, None]) + xp.sum((pd_raw > 1) & active[:, None])
        )
        px = xp.where(active[:, None], xp.minimum(px_raw, 1.0), 0.0)
        pd = xp.where(active[:, None], xp.minimum(pd_raw, 1.0), 0.0)
        if self.trains == "host":
            # drawn with the array's generator (the same bits on every backend; on a GPU this
            # moves batch x (in + out) probabilities down and the packed trains up)
            BL = asnumpy(BL)
            xbits = to_device(self._draw_bits(asnumpy(px), BL, bl), xp)
            dbits = to_device(self._draw_bits(asnumpy(pd), BL, bl), xp)
        bases = np.array(
            [_rng.call_base(self.key, self.counter + b) for b in range(B)], dtype=np.uint64
        )
        self.counter += B
        if self.trains == "device":
            draw = getattr(self._k, "pulse_trains", None) or functools.partial(pulse_trains, xp)
            xbits = draw(px, BL, bl, self._next_base())
            dbits = draw(pd, BL, bl, self._next_base())
            BL = asnumpy(BL)
        W = self._clean_weights()  # kept current by the kernel
        total = self._k.pulse_update(
            self.state, self.params, bases, xbits, dbits, xp.ascontiguousarray(x2 < 0),
            xp.ascontiguousarray(d2 < 0), self.out_features, self.in_features, route,
            W.reshape(-1), self.alpha, self._gref_code(),
        )  # fmt: skip
        return {"coincidences": int(total), "clipped": clipped, "bl": BL}

    def _draw_bits(self, p, BL, bl):
        """Bernoulli trains, bit-packed into uint64 words: shape (batch, n, ceil(bl/64))."""
        B, n = p.shape
        nw = (bl + 63) // 64
        used = int(BL.max()) if B else 1  # bits past the longest train are all zero
        u = self._rng.random((B, n, used), dtype=np.float32)
        # bits past ``used`` stay zero: compare straight into the padded buffer (no copies)
        bits = np.zeros((B, n, nw * 64), dtype=bool)
        np.less(u, p[:, :, None].astype(np.float32), out=bits[:, :, :used])
        if B and int(BL.min()) < used:
            bits[:, :, :used] &= np.arange(used)[None, None, :] < BL[:, None, None]
        packed = np.packbits(bits, axis=2, bitorder="little")
        return np.ascontiguousarray(packed).view(np.uint64).reshape(B, n, nw)
