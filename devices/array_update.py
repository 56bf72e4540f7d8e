"""Pulse updates of a :class:`devices.DeviceArray`: requested changes and pulse-train updates.

:class:`PulseUpdates` holds :meth:`~devices.DeviceArray.pulse_request` (the pulse-backprop hot
path) and :meth:`~devices.DeviceArray.pulse_update` (the stochastic pulse-train update); it is a
part of :class:`devices.DeviceArray` (which inherits it), written apart to keep each module
short, and is not used alone: it reads the array's state, kernels and helpers.
"""

from __future__ import annotations

import functools
import sys

import numba
import numpy as np

from . import _pcg64, _rng
from . import converters as _conv
from .kernels.bits import PACK8 as _PACK8
from .routing import route_code
from .validation import check_choice, check_int, check_real
from .xp import asnumpy, pulse_trains, to_device

__all__ = ["PulseUpdates", "METHODS", "SIDES", "uniform24"]

#: Update methods that route signed pulse counts to the devices.
METHODS = ("bidirectional", "unidirectional")
SIDES = ("both", "plus")


#: Largest parameter table (bytes) of which :meth:`PulseUpdates._device_major_prm` keeps a
#: device-major copy (4 M devices of 8 float64 rows).
_DEVICE_MAJOR_MAX_BYTES = 256 << 20


class PulseUpdates:
    """The pulse updates of :class:`devices.DeviceArray` (a part of that class, not used alone)."""

    #: :meth:`pulse_update` refuses NaN or infinite ``x`` and ``d`` with a ``ValueError`` before
    #: it changes anything (in the numba path, in the compiled pass of the update's setup), so
    #: :meth:`learning_rules.PulseRule.update` does not check them a second time.
    pulse_update_checks_finite = True

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
        thr = 0.0
        if refresh_threshold is not None and self.mapping == "differential":
            thr = check_real("refresh_threshold", refresh_threshold, lo=0.0, hi=1.0, lo_open=True)
        # the kernels write ``need`` only when thr > 0: else one unused entry, not a mask of the
        # array's size allocated and zeroed per call
        need = xp.zeros(self.out_features * self.in_features if thr > 0 else 1, dtype=bool)
        W = self._clean_weights()  # made current here, kept current by the kernel
        base = self._next_base()
        base_r = self._next_base()
        pulses, bad = self._k.pulse_request(
            self.state, self.params, xp.ascontiguousarray(dW).ravel(), up, dn, theta, nm,
            rounding == "stochastic", route, base, base_r, thr,
            0.5 / self.device.levels("ltp"), self.device.dG, need, W.reshape(-1), self.alpha,
            self._gref_code(), prm_dm=self._device_major_prm(),
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
        # numba arrays with host trains: probabilities, thresholds, signs, the finite check and
        # the call bases in one compiled pass, the trains of x and d from the generator's next
        # outputs (:meth:`_fused_trains`; the same numbers as the numpy path below)
        fused = _FUSED_TRAINS and self.backend == "numba" and self.trains == "host"
        x = self._check_vec("x", x, self.in_features, finite=not fused)
        d = self._check_vec("d", d, self.out_features, finite=not fused)
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
        if fused:
            BL, xbits, dbits, xneg, dneg, bases, clipped = self._fused_trains(
                x2, d2, lr, dw, bl, bl_management, update_management
            )
            W = self._clean_weights()  # kept current by the kernel
            total = self._k.pulse_update(
                self.state, self.params, bases, xbits, dbits, xneg, dneg, self.out_features,
                self.in_features, route, W.reshape(-1), self.alpha, self._gref_code(),
                prm_dm=self._device_major_prm(),
            )  # fmt: skip
            return {"coincidences": int(total), "clipped": clipped, "bl": BL}
        B = x2.shape[0]
        ax = xp.abs(x2)
        ad = xp.abs(d2)
        xm = xp.max(ax, axis=1)
        dm = xp.max(ad, axis=1)
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
        # inactive samples (x or d all zero) get probability 0: a zero factor on their rows
        # (the products of the active rows, their clipping and their minimum are unchanged)
        px = xp.multiply(xp.where(active, fx, 0.0)[:, None], ax, out=ax)
        pd = xp.multiply(xp.where(active, fd, 0.0)[:, None], ad, out=ad)
        clipped = int(xp.count_nonzero(px > 1)) + int(xp.count_nonzero(pd > 1))
        xp.minimum(px, 1.0, out=px)
        xp.minimum(pd, 1.0, out=pd)
        if self.trains == "host":
            # drawn with the array's generator (the same bits on every backend; on a GPU this
            # moves batch x (in + out) probabilities down and the packed trains up)
            BL = asnumpy(BL)
            xbits = to_device(self._draw_bits(asnumpy(px), BL, bl), xp)
            dbits = to_device(self._draw_bits(asnumpy(pd), BL, bl), xp)
        bases = _rng.call_bases(self.key, self.counter, B)
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

    def _device_major_prm(self):
        """``params.prm`` in device-major (Fortran) order for the numba kernels' scattered writes
        (the sparse rows of :func:`devices.kernels.numba_cpu.pulse_update`, and
        :func:`~devices.kernels.numba_cpu.pulse_request`), or None: built on first use and kept
        while ``params.prm`` is the same array (assigning ``prm`` makes a new one), and only for
        tables of at most ``_DEVICE_MAJOR_MAX_BYTES`` (the copy doubles the table's memory;
        above that the kernel reads the row-major table, with the same results). The parameter
        table is not written after construction; a change made to it in place would not reach
        the copy. None on the other backends, whose kernels do not read it."""
        if self.backend != "numba":  # only the numba kernels read it (a cupy table stays put)
            return None
        prm = self.params.prm
        kept = self.__dict__.get("_prm_dm")
        if kept is not None and kept[0] is prm:
            return kept[1]
        small = prm.ndim == 2 and prm.shape[1] > 1 and prm.nbytes <= _DEVICE_MAJOR_MAX_BYTES
        table = np.asfortranarray(prm) if small else None
        self._prm_dm = (prm, table)
        return table

    def _fused_trains(self, x2, d2, lr, dw, bl, bl_management, update_management):
        """The host work of :meth:`pulse_update` on numba arrays with host trains, fused.

        One compiled pass (:func:`_train_setup`) checks ``x`` and ``d`` for NaN and infinite
        values and computes what the numpy path computes with some thirty array operations:
        train lengths, probabilities (as the 24-bit thresholds of their float32 values), the
        count clipped at 1, the signs and the call bases. The trains of ``x`` and then ``d``
        take the generator's next 32-bit outputs, ``max(BL)`` per train: bit ``t`` of a train
        is set iff ``t < BL[b]`` and the ``t``-th float32 uniform of that train is below its
        probability, the numbers and the generator state of :meth:`_draw_bits` on the same
        probabilities. With PCG64 (``default_rng``'s) :func:`devices._pcg64.draw_trains` draws
        and packs them in compiled code, leaping over the numbers that decide no bit (trains
        of probability 0 or 1, numbers past a sample's ``BL[b]``); other generators draw one
        block (:func:`_raw32`, :func:`uniform24`) packed by :func:`_pack_trains`. Returns
        ``(BL, xbits, dbits, xneg, dneg, bases, clipped)``; the array's counter advances by the
        batch size.
        """
        x2 = np.ascontiguousarray(x2)
        d2 = np.ascontiguousarray(d2)
        B, nx = x2.shape
        nd = d2.shape[1]
        BL = np.empty(B, dtype=np.int64)
        thx = np.empty((B, nx), dtype=np.uint32)
        thd = np.empty((B, nd), dtype=np.uint32)
        xneg = np.empty((B, nx), dtype=np.bool_)
        dneg = np.empty((B, nd), dtype=np.bool_)
        bases = np.empty(B, dtype=np.uint64)
        clipped, bad = _train_setup(
            x2, d2, float(lr), float(dw), int(bl), bool(bl_management), bool(update_management),
            np.uint64(self.key & _rng.MASK64), np.uint64(self.counter & _rng.MASK64), BL, thx,
            thd, xneg, dneg, bases,
        )  # fmt: skip
        if bad:  # the message of DeviceArray._check_vec; nothing was drawn or written
            raise ValueError(f"{'x' if bad == 1 else 'd'} contains NaN or infinite values")
        self.counter += B
        nw = (bl + 63) // 64
        xbits = np.zeros((B, nx, nw), dtype=np.uint64)
        dbits = np.zeros((B, nd, nw), dtype=np.uint64)
        used = int(BL.max()) if B else 1  # the numbers each train takes from the generator
        if type(self._rng.bit_generator) is np.random.PCG64:
            # in compiled code, drawing only the numbers that decide a bit (devices/_pcg64.py)
            _pcg64.draw_trains(self._rng.bit_generator, thx, thd, BL, used, xbits, dbits)
        elif B * (nx + nd) * used <= _RAW_BLOCK:
            raw, shift = self._uniform_words(B * (nx + nd) * used)
            split = B * nx * used
            _pack_trains(raw[:split], shift, thx, BL, used, xbits)
            _pack_trains(raw[split:], shift, thd, BL, used, dbits)
        else:  # samples in blocks of at most _RAW_BLOCK numbers (x's trains, then d's)
            for th, bits in ((thx, xbits), (thd, dbits)):
                n = th.shape[1]
                step = max(1, _RAW_BLOCK // max(n * used, 1))
                for b0 in range(0, B, step):
                    b1 = min(B, b0 + step)
                    raw, shift = self._uniform_words((b1 - b0) * n * used)
                    _pack_trains(raw, shift, th[b0:b1], BL[b0:b1], used, bits[b0:b1])
        return BL, xbits, dbits, xneg, dneg, bases, clipped

    def _uniform_words(self, count):
        """``count`` float32 uniforms of the array's generator as integers ``k`` with
        ``u = (k >> shift) 2^-24``: numpy's 32-bit outputs (``shift`` 8, :func:`_raw32`) for
        PCG64, else :func:`uniform24` (``shift`` 0). Returns ``(k, shift)``."""
        raw = _raw32(self._rng, count)
        if raw is not None:
            return raw, 8
        return uniform24(self._rng, (count,)), 0

    def _draw_bits(self, p, BL, bl):
        """Bernoulli trains, bit-packed into uint64 words: shape (batch, n, ceil(bl/64)).

        Bit ``t`` of train ``(b, r)`` is set iff ``t < BL[b]`` and ``u[b, r, t] < p[b, r]``
        (as float32) for ``u = rng.random((batch, n, max(BL)), dtype=float32)`` of the array's
        generator: up to ``_FUSED_MAX`` numbers in one compiled pass (:func:`_draw_words`),
        more as blocks of their 24-bit integers (:func:`uniform24`); either way the same
        numbers and the same generator state afterwards.
        """
        B, n = p.shape
        nw = (bl + 63) // 64
        used = int(BL.max()) if B else 1  # bits past the longest train are all zero
        if B * n * used <= _FUSED_MAX:
            # few numbers (the training regime: short trains, small layers): one compiled pass
            # that draws each uniform from the same generator and sets its bit, without the
            # intermediate arrays of the block path below (same bits, same generator state)
            words = np.zeros((B, n, nw), dtype=np.uint64)
            _draw_words(self._rng, np.ascontiguousarray(p, dtype=np.float64),
                        np.ascontiguousarray(BL, dtype=np.int64), used, words)  # fmt: skip
            return words
        p32 = p.astype(np.float32)
        # the bytes that hold the trains' bits (later bytes and words stay zero): compare
        # straight into a buffer of whole bytes
        nbytes = (used + 7) // 8
        bits = np.zeros((B, n, 8 * nbytes), dtype=bool)
        # u = k 2^-24 < p32  <=>  k < ceil(p32 2^24) (exact: p32 2^24 is a float32 <= 2^24)
        thr = np.ceil(p32 * np.float32(1 << 24)).astype(np.uint32)
        # samples in blocks of at most _DRAW_BLOCK numbers: the block's integers stay in the
        # cache and in reused memory (a fresh buffer of a whole batch costs page faults)
        step = max(1, _DRAW_BLOCK // (n * used))
        for b0 in range(0, B, step):
            b1 = min(B, b0 + step)
            k = uniform24(self._rng, (b1 - b0, n, used))
            np.less(k, thr[b0:b1, :, None], out=bits[b0:b1, :, :used])
        words = np.zeros((B, n, 8 * nw), dtype=np.uint8)
        if sys.byteorder == "little":
            # 8 bools (bytes 0/1) read as one uint64; the multiply gathers byte i into bit i
            # of the top byte (np.packbits with bitorder="little", without its per-row loop)
            words[:, :, :nbytes] = (bits.view(np.uint64) * _PACK8) >> np.uint64(56)
        else:  # pragma: no cover - big-endian machines
            words[:, :, :nbytes] = np.packbits(bits, axis=2, bitorder="little")
        words = words.view(np.uint64).reshape(B, n, nw)
        if B and int(BL.min()) < used:
            # bits at and past a sample's own train length BL[b] are cleared word by word
            m = np.clip(BL[:, None] - 64 * np.arange(nw), 0, 64).astype(np.uint64)
            full = m == 64
            keep = np.where(full, _ALL64, (np.uint64(1) << np.where(full, 0, m)) - np.uint64(1))
            words &= keep[:, None, :]
        return words


@numba.njit(cache=True, error_model="numpy")
def _draw_words(rng, p, BL, used, words):
    """The trains of :meth:`PulseUpdates._draw_bits`, bit by bit: ``u = rng.random(float32)``
    for every (sample, train, t < used) in C order (numba's generator is numpy's: the same
    numbers, the same state afterwards), bit ``t`` set iff ``t < BL[b]`` and ``u < p`` (float32).
    """
    for b in range(p.shape[0]):
        lb = BL[b]
        for r in range(p.shape[1]):
            pr = np.float32(p[b, r])
            for t in range(used):
                u = rng.random(dtype=np.float32)
                if t < lb and u < pr:
                    words[b, r, t >> 6] |= np.uint64(1) << np.uint64(t & 63)


@numba.njit(cache=True, error_model="numpy")
def _train_setup(x, d, lr, dw, bl, blm, um, key, counter, BL, thx, thd, xneg, dneg, bases):
    """The host arithmetic of :meth:`PulseUpdates.pulse_update` in one pass, operation for
    operation that of its numpy path (the same float64 operations in the same order, so the
    same values): per sample the train length ``BL[b]``, the thresholds
    ``ceil(float32(p) 2^24)`` of the row and column probabilities (``thx``, ``thd``), the signs
    ``x < 0``, ``d < 0`` and the call base ``mix(key ^ (counter + b) PHI)``
    (:func:`devices._rng.call_bases`). Returns ``(clipped, bad)``: probabilities clipped at 1,
    and 1 (2) when ``x`` (``d``) holds a NaN or infinite value (then nothing else is set).
    """
    B = x.shape[0]
    # per sample, the largest |x| and |d| and the finite check in one integer pass each
    # (:func:`_abs_max_bits`: loops LLVM vectorizes, where a float max or an early return
    # per element are not); x is checked before d, as before
    top = np.empty((2, B), dtype=np.uint64)
    xb = x.view(np.uint64)
    db = d.view(np.uint64)
    for b in range(B):
        top[0, b] = _abs_max_bits(xb[b])
    for b in range(B):
        if top[0, b] >= _INF_BITS:
            return 0, 1
    for b in range(B):
        top[1, b] = _abs_max_bits(db[b])
    for b in range(B):
        if top[1, b] >= _INF_BITS:
            return 0, 2
    amax = top.view(np.float64)  # the bits back as the (non-negative, finite) maxima
    clipped = 0
    for b in range(B):
        xm = amax[0, b]
        dm = amax[1, b]
        active = xm > 0.0 and dm > 0.0
        xs = xm if active else 1.0
        ds = dm if active else 1.0
        if blm:
            L = np.int64(min(max(np.ceil(lr * xs * ds / dw), 1.0), float(bl)))
        else:
            L = np.int64(bl)
        BL[b] = L
        C = np.sqrt(lr / (dw * np.float64(L)))
        if um:
            fx = C * np.sqrt(ds / xs)
            fd = C * np.sqrt(xs / ds)
        else:
            fx = C
            fd = C
        if not active:
            fx = 0.0
            fd = 0.0
        clipped += _thresholds(x[b], fx, thx[b], xneg[b])
        clipped += _thresholds(d[b], fd, thd[b], dneg[b])
        z = key ^ ((counter + np.uint64(b)) * _PHI)
        z = z ^ (z >> np.uint64(30))
        z = z * _M1
        z = z ^ (z >> np.uint64(27))
        z = z * _M2
        bases[b] = z ^ (z >> np.uint64(31))
    return clipped, 0


@numba.njit(cache=True, inline="always", error_model="numpy")
def _abs_max_bits(bits):
    """The largest of ``bits[i] & 0x7FF...F`` (float64 bit patterns with the sign cleared):
    for finite values the bits of ``max |v|`` (the patterns of non-negative floats order as the
    floats do; 0 when every value is 0 or -0), at or above ``_INF_BITS`` when some value is
    infinite or NaN."""
    m = np.uint64(0)
    for i in range(bits.shape[0]):
        a = bits[i] & _ABS_BITS
        m = a if a > m else m
    return m


@numba.njit(cache=True, inline="always", error_model="numpy")
def _thresholds(v, f, th, neg):
    """Row ``p = min(f |v|, 1)`` as thresholds ``ceil(float32(p) 2^24)`` (the float32 uniform
    ``k 2^-24`` is below ``float32(p)`` iff ``k < th``) and signs ``v < 0``; returns how many
    ``p`` were clipped at 1."""
    c = 0
    for i in range(v.shape[0]):
        p = f * abs(v[i])
        if p > 1.0:
            c += 1
            p = 1.0
        th[i] = np.uint32(np.ceil(np.float32(p) * np.float32(16777216.0)))
        neg[i] = v[i] < 0.0
    return c


@numba.njit(cache=True, error_model="numpy")
def _pack_trains(k, shift, th, BL, used, words):
    """Trains from the integers ``k`` of float32 uniforms (``u = (k >> shift) 2^-24``), in C
    order ``(sample, train, t < used)``: bit ``t`` of train ``(b, r)`` is set iff ``t < BL[b]``
    and ``k >> shift < th[b, r]`` (``words`` zero on entry)."""
    n = th.shape[1]
    sh = np.uint64(shift)
    for b in range(th.shape[0]):
        lb = min(BL[b], used)
        base = b * n * used
        if lb <= 64:  # one word a train (the training regime): no loop over words
            for r in range(n):
                lim = np.uint64(th[b, r]) << sh  # k >> s < th  <=>  k < th << s
                kb = base + r * used
                w = np.uint64(0)
                for t in range(lb):
                    w |= np.uint64(np.uint64(k[kb + t]) < lim) << np.uint64(t)
                words[b, r, 0] = w
            continue
        for r in range(n):
            lim = np.uint64(th[b, r]) << sh
            kb = base + r * used
            for w0 in range(0, lb, 64):
                w = np.uint64(0)
                for t in range(w0, min(lb, w0 + 64)):
                    w |= np.uint64(np.uint64(k[kb + t]) < lim) << np.uint64(t - w0)
                words[b, r, w0 >> 6] = w


def _raw32(rng: np.random.Generator, count: int) -> np.ndarray | None:
    """The next ``count`` 32-bit outputs of PCG64 as ``Generator.random(dtype=float32)`` takes
    them (a pending half first, then the low and the high half of each 64-bit output), drawn as
    one block, with the generator state left where ``random`` leaves it; None for other bit
    generators and big-endian machines (they take ``rng.random``)."""
    bg = rng.bit_generator
    if type(bg) is not np.random.PCG64 or sys.byteorder != "little":
        return None
    if count <= 0:
        return np.empty(0, dtype=np.uint32)
    state = bg.state
    pending = int(state["has_uint32"])
    fresh = count - pending  # 32-bit halves to take from new 64-bit outputs
    raw = bg.random_raw((fresh + 1) // 2).view(np.uint32)  # low half first on little-endian
    if pending:
        out = np.empty(count, dtype=np.uint32)
        out[0] = state["uinteger"]
        out[1:] = raw[:fresh]
    else:
        out = raw[:fresh]
    # numpy's state afterwards: a half pending when ``fresh`` is odd, and ``uinteger`` holding
    # the high half of the last 64-bit output drawn (also once it was used)
    state = bg.state
    state["has_uint32"] = fresh % 2
    if fresh:
        state["uinteger"] = int(raw[-1])
    bg.state = state
    return out


#: The numba arrays' fused host path of pulse_update (:meth:`PulseUpdates._fused_trains`);
#: False takes the numpy path (the same numbers; tests compare the two).
_FUSED_TRAINS = True
#: Numbers of the fused path drawn as one block (uint32: 512 KiB); larger batches in blocks.
_RAW_BLOCK = 1 << 17
_PHI = np.uint64(_rng.PHI)
_M1 = np.uint64(_rng.M1)
_M2 = np.uint64(_rng.M2)
_ALL64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_ABS_BITS = np.uint64(0x7FFFFFFFFFFFFFFF)  # a float64's bits without the sign
_INF_BITS = np.uint64(0x7FF0000000000000)  # +inf's bits: at or above it, inf or NaN
#: Up to this many numbers ``_draw_bits`` draws and packs them in one compiled pass
#: (:func:`_draw_words`, about 2.5 ns a number); above it the block path (raw 64-bit outputs,
#: about 1 ns a number, with a fixed cost of some ten numpy calls).
_FUSED_MAX = 1 << 14
#: Numbers drawn per block by ``_draw_bits`` (uint32: 256 KiB).
_DRAW_BLOCK = 1 << 16
#: Below this many numbers :func:`uniform24` takes ``rng.random`` (the same numbers).
_RAW_MIN = 4096


def uniform24(rng: np.random.Generator, shape) -> np.ndarray:
    """``rng.random(shape, dtype=np.float32) * 2**24`` as uint32 integers, drawn faster.

    numpy's float32 uniform is ``(next_uint32 >> 8) 2^-24``; for PCG64 (the generator of
    ``default_rng``) ``next_uint32`` hands out the low and then the high half of each 64-bit
    output, keeping a pending half in the generator state. This reads the 64-bit outputs in one
    block (``random_raw``) and keeps that pending half exactly as numpy does, so the numbers and
    the generator state afterwards are those of ``rng.random``; other bit generators (and
    big-endian machines) take ``rng.random`` itself.
    """
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape))
    out = _raw32(rng, count) if count >= _RAW_MIN else None
    if out is None:
        u = rng.random(shape, dtype=np.float32)
        return (u * np.float32(1 << 24)).astype(np.uint32)
    np.right_shift(out, 8, out=out)
    return out.reshape(shape)
