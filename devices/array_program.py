"""Programming, saturation and refresh of a :class:`devices.DeviceArray`.

:class:`Programming` holds :meth:`~devices.DeviceArray.program` (ideal, open loop,
program-and-verify), RESET, the saturation diagnostics and the refresh of differential pairs; it
is a part of :class:`devices.DeviceArray` (which inherits it), written apart to keep each module
short, and is not used alone: it reads the array's state, kernels and helpers.
"""

from __future__ import annotations

import numpy as np

from .kernels import reference as _ref
from .validation import check_choice, check_real
from .xp import asnumpy, normal, to_device

__all__ = ["Programming", "PROGRAM_MODES", "FORMS"]

#: Programming modes of :meth:`DeviceArray.program`.
PROGRAM_MODES = ("ideal", "open_loop", "verify")
FORMS = ("one_sided", "centered")

#: :meth:`Programming.refresh` on the numba backend runs the fused kernel of
#: :mod:`devices.kernels.refresh` where it covers the case (the tests set this to False to
#: compare it with the host path).
_FUSED_REFRESH = True
_FUSED_MODES = {"verify": 0, "ideal": 1}  # devices.kernels.refresh.MODE_VERIFY / MODE_IDEAL
_KR = []


def _fused_refresh():
    """:mod:`devices.kernels.refresh`, imported on first use (it imports numba)."""
    if not _KR:
        from .kernels import refresh

        _KR.append(refresh)
    return _KR[0]


class Programming:
    """Programming and refresh of :class:`devices.DeviceArray` (a part of it, not used alone)."""

    def _targets(self, syn, w, form):
        """Device indices and target conductances for synapses ``syn`` (flat indices) with
        weights ``w`` (clipped to the range)."""
        dev = self.device
        xp = self._xp
        w = xp.clip(w, -self.w_max, self.w_max)
        if self.mapping == "reference":
            return syn, self.g_ref + w / self.alpha
        ip = syn
        im = syn + self.out_features * self.in_features
        if form == "one_sided":
            # the active device sits |w| / alpha above its partner, which rests at its own Gmin
            # (or, where the active device's own Gmin is higher than that, just below it)
            gmin_p, gmin_m = self.gmin_i[ip], self.gmin_i[im]
            a = xp.abs(w) / self.alpha
            act_p = xp.maximum(gmin_p, gmin_m + a)  # w >= 0: G+ active
            act_m = xp.maximum(gmin_m, gmin_p + a)  # w < 0: G- active
            gp = xp.where(w >= 0, act_p, act_m - a)
            gm = xp.where(w >= 0, act_p - a, act_m)
        else:
            mid = 0.5 * (dev.gmin + dev.gmax)
            gp = mid + w / (2 * self.alpha)
            gm = mid - w / (2 * self.alpha)
        return xp.concatenate([ip, im]), xp.concatenate([gp, gm])

    def _reset(self, idx, touch=True):
        """RESET devices ``idx`` to Gmin (plus reset noise); counted, ignored by frozen ones.
        ``touch=False``: the caller updates the weight cache of their synapses afterwards."""
        if idx.size == 0:
            return
        self.cnt_reset[idx] += 1
        live = idx[self.frozen[idx] == 0]
        g = self.gmin_i[live].copy()
        rs = self.variability.reset_sigma
        if rs > 0:
            xp = self._xp
            g += xp.abs(rs * self.device.dG * normal(xp, self._next_base(), live))
        self.G[live] = self._xp.minimum(g, self.gmax_i[live])
        self.Gw[live] = self.G[live]
        self.tau[live] = 0.0
        cap = self.budget[live]
        if not bool(self._xp.isinf(cap).all()):  # no finite budget: nothing can freeze here
            used = (
                self.cnt_up[live] + self.cnt_dn[live] + self.cnt_prog[live] + self.cnt_reset[live]
            )
            self.frozen[live[used >= cap]] = 1
        if touch:
            self._touch(live)

    def program(
        self,
        W,
        *,
        mode: str = "ideal",
        form: str = "one_sided",
        tol: float | None = None,
        mask=None,
    ) -> None:
        """Write weights onto the array.

        Parameters
        ----------
        W : array_like, shape (out, in)
            Target weights; clipped to ``[-w_max, w_max]``.
        mode : {"ideal", "open_loop", "verify"}
            ``ideal`` sets conductances directly. ``open_loop`` RESETs and applies
            ``round(x_nom(G_target))`` LTP pulses (the device's own curve and noise decide where
            it lands). ``verify`` RESETs, then pulses and reads until the read conductance is
            within ``tol`` of the target or one more pulse (predicted on the nominal curve) would
            not get closer; at most ``2 P_LTP`` pulses.
        form : {"one_sided", "centered"}
            Differential mapping: ``w >= 0`` on G+ with G- at its Gmin (G+ is set ``w / alpha``
            above the partner's own Gmin, so device-to-device Gmin spread does not bias ``w``;
            mirrored for ``w < 0``), or both devices around mid-range.
        tol : float, optional
            Verify tolerance in weight units (default half a nominal unidirectional/reference
            step).
        mask : array_like of bool, shape (out, in), optional
            Program only these synapses.
        """
        xp = self._xp
        W = self._asarray("W", W, xp.float64)
        if W.shape != self.shape:
            raise ValueError(f"W must have shape {self.shape}, got {W.shape}")
        if not bool(xp.all(xp.isfinite(W))):
            raise ValueError("W contains NaN or infinite weights")
        check_choice("mode", mode, PROGRAM_MODES)
        check_choice("form", form, FORMS)
        if mask is None:
            syn = xp.arange(self.out_features * self.in_features)
        else:
            mask = self._asarray("mask", mask)
            if mask.shape != self.shape or mask.dtype != bool:
                raise ValueError(
                    f"mask must be a boolean array of shape {self.shape}, got "
                    f"{mask.dtype} {mask.shape}"
                )
            syn = xp.flatnonzero(mask)
        if tol is not None:
            tol = check_real("tol", tol, lo=0.0)
        self._program(syn, W.ravel()[syn], mode, form, tol)

    def _program(self, syn, w, mode, form, tol=None, touch=True):
        """Program weights ``w`` onto synapses ``syn`` (flat indices); see :meth:`program`.
        ``touch=False`` (``mode="verify"`` only): the caller updates the weight cache of
        ``syn`` afterwards (one update instead of one per step)."""
        idx, target = self._targets(syn, w, form)
        if mode == "ideal":
            keep = self.frozen[idx] == 0
            live = idx[keep]
            self.G[live] = self._xp.clip(target[keep], self.gmin_i[live], self.gmax_i[live])
            self.Gw[live] = self.G[live]
            self.tau[live] = 0.0
            self._touch(live)
            return
        if tol is None:
            step = self.nominal_step(
                "unidirectional" if self.mapping == "differential" else "bidirectional"
            )[0]
            tol = 0.5 * step
        self._reset(idx, touch)
        dev = self.device
        up = target > self.gmin_i[idx] + 1e-12 * dev.dG
        need, t_need = idx[up], target[up]
        xp = self._xp
        # the nominal curve's inverse is host code (a host round trip on the GPU backend)
        x_t = to_device(self._nominal_pulses(asnumpy(t_need)), xp)
        x_t = xp.minimum(x_t, 2.0 * dev.levels("ltp"))
        if mode == "open_loop":
            self._write_sparse(need, xp.round(x_t).astype(xp.int64), prog=True)
            return
        self._verify(need, t_need, x_t, tol / self.alpha, touch)

    def _nominal_pulses(self, G):
        """The nominal LTP coordinates of conductances ``G`` (numpy): what ``device.pulses(G,
        "ltp")`` means, in the numbers of the array's kernels.

        On the numba backend they come from :func:`devices.kernels.refresh.nominal_coordinates`
        (the kernels' own inverse, with the C library's ``log`` / ``log1p``): the fused refresh
        and the fused batch-1 kernel compute the same coordinates inside their kernels, so the
        host path, the fused refresh and the batch-1 path program toward the same targets bit
        for bit. numpy's vectorized ``log1p`` / ``log`` (what ``device.pulses`` calls) differ
        from the C library's in the last bit for some inputs, so for nonlinear exponential and
        sloped step models the two differ by an ulp now and then
        (``tests/devices/test_refresh_nominal.py``). Other backends take ``device.pulses``,
        except that a step device whose nominal curve is linear (family 1 with slope 0:
        constant_step, linear_step) takes the same float operations on the same values in a
        few numpy passes (a refresh programs a few devices at a time, where the per-call cost
        is everything). ``G`` with NaN goes to ``device.pulses``, which refuses it.
        """
        dev = self.device
        if np.isnan(G).any():
            return dev.pulses(G, "ltp")
        pn, const, lut, _ = dev._nominal()
        if self.backend == "numba":
            return _fused_refresh().nominal_coordinates(dev.family, G, pn[:, 0], const, lut)
        if dev.family == 1:
            bmin, bmax, dw, gam = pn[0, 0], pn[1, 0], pn[2, 0], pn[4, 0]
            if abs(1.0 + 1.0 * dw * gam - 1.0) < 1e-15:  # reference._step_affine's `lin`
                u = const[2] + (G - const[0]) / (const[1] - const[0]) * (const[3] - const[2])
                return np.abs(np.clip(u, bmin, bmax) - bmin) / dw
        return dev.pulses(G, "ltp")

    def _read_subset(self, idx):
        s = self.variability.read_sigma
        G = self.G[idx]
        self.cnt_read[idx] += 1
        self.subset_reads["refresh"] += int(idx.size)
        if s <= 0:
            return G
        return G * (1.0 + s * normal(self._xp, self._next_base(), idx))

    def _verify(self, idx, target, x_t, tol_g, touch=True):
        """Program-and-verify (kernel ``verify``): pulse trains of half the remaining nominal
        distance while it is 4 pulses or more, then single pulses, while one more train
        (predicted on the nominal curve) gets closer; a read after every train; at most
        ``2 P_LTP`` pulses per device."""
        s = 1 if self.variability.read_sigma > 0 else 0
        pn = self.device._nominal()[0]  # nominal parameters, shape (8, 1)
        c0 = self.counter
        W = self._k.verify(
            self.state, self.params, idx, target, x_t, tol_g, 2 * self.device.levels("ltp"),
            float(self.variability.read_sigma), np.uint64(self.key), c0, pn,
        )  # fmt: skip
        self.counter = c0 + W * (1 + s) + s
        # every programmed device is read once per verify round (W trains, one last read)
        self.cnt_read[idx] += int(W) + 1
        self.subset_reads["verify"] += (int(W) + 1) * int(idx.size)
        if touch:
            self._touch(idx)

    # ------------------------------------------------------------------ saturation / refresh
    def _coordinate(self, up: bool):
        # host code (a host round trip on the GPU backend; diagnostics, not the update path)
        a = [asnumpy(v) for v in (self.G, self.prm, self.const, self.lut_up, self.lut_dn)]
        x, P = _ref.coordinate(self.device.family, a[0], up, a[1], a[2], a[3], a[4])
        return to_device(x, self._xp), to_device(P, self._xp)

    def saturated(self, which: str = "high") -> np.ndarray:
        """Saturated devices, shape ``(k, out, in)``.

        ``"high"``: headroom on the LTP branch below half a pulse; ``"low"``: LTD coordinate
        below half a pulse (``specs/devices.md`` 5.3).
        """
        check_choice("which", which, ("high", "low"))
        if which == "high":
            x, P = self._coordinate(True)
            return self._view((P - x) < 0.5)
        x, _ = self._coordinate(False)
        return self._view(x < 0.5)

    def saturation(self) -> dict:
        """Fractions of devices saturated high and low."""
        return {
            "high": float(self.saturated("high").mean()),
            "low": float(self.saturated("low").mean()),
        }

    def needs_refresh(self, threshold: float = 0.9) -> np.ndarray:
        """Pairs to refresh (``specs/devices.md`` 5.2): ``max(g+, g-) >= threshold`` unless the
        other device is within half a nominal step of its Gmin (``g`` is measured from each
        device's own Gmin in units of the nominal range). Differential mapping only."""
        threshold = check_real("threshold", threshold, lo=0.0, hi=1.0, lo_open=True)
        if self.mapping != "differential":
            raise ValueError("needs_refresh() needs mapping='differential'")
        # normalized by the nominal range, from each device's own Gmin
        g = (self._view(self.G) - self._view(self.gmin_i)) / self.device.dG
        hi = self._xp.maximum(g[0], g[1])
        lo = self._xp.minimum(g[0], g[1])
        return (hi >= threshold) & (lo > 0.5 / self.device.levels("ltp"))

    def _refresh_consts(self):
        """The constants of :func:`devices.kernels.refresh.refresh_pairs` of this array, cached
        with what they derive from (device model, weight range, variability, key)."""
        dev, var = self.device, self.variability
        c = self.__dict__.get("_refresh_cache")
        if c is not None and c[0] is dev and c[1] is var and c[2] == (self.w_max, self.key):
            return c[3]
        pn, const_n, lut_n, _ = dev._nominal()
        tol = 0.5 * self.nominal_step("unidirectional")[0]  # _program's default tolerance
        alpha = self.alpha
        consts = _fused_refresh().pack(
            alpha=alpha, w_max=self.w_max, read_sigma=float(var.read_sigma),
            reset_sigma=float(var.reset_sigma), dG=dev.dG, tol_g=tol / alpha,
            cap=2 * dev.levels("ltp"), key=self.key, pn=pn[:, 0], const_n=const_n, lut_n=lut_n,
        )  # fmt: skip
        self._refresh_cache = (dev, var, (self.w_max, self.key), consts)
        return consts

    def _refresh_fused(self, mask, mode) -> int:
        """:meth:`refresh` through :func:`devices.kernels.refresh.refresh_pairs` (numba
        backend) in one call; the same state, counters, call counter and weight cache as the
        host path, bit for bit. Returns ``-1`` when a weight reads as NaN,
        having changed nothing."""
        consts = self._refresh_consts()
        wc = self._wcache
        n, counter, wsteps, m = _fused_refresh().refresh_pairs(
            self.state, self.params, mask, self.gmax_i, self.cnt_read,
            self.refreshes, None if wc is None else wc.reshape(-1), consts, self.counter,
            _FUSED_MODES[mode],
        )  # fmt: skip
        if n > 0:
            self.counter = int(counter)
            self.subset_reads["refresh"] += 2 * int(n)
            if mode == "verify":
                self.subset_reads["verify"] += (int(wsteps) + 1) * int(m)
        return int(n)

    def refresh(self, mask, *, mode: str = "verify") -> int:
        """Refresh pairs: read ``w`` (read noise applies), RESET both devices, program ``w`` on
        the side of its sign (one-sided form).

        On the numba backend ``mode="verify"`` and ``"ideal"`` run compiled
        (:mod:`devices.kernels.refresh`, the same numbers; a unidirectional MNIST run refreshes
        about three pairs per call, where the forty numpy operations of the host path were most
        of the cost), in one call. ``"open_loop"`` and the other backends take the host path
        below.

        Parameters
        ----------
        mask : array_like of bool, shape (out, in)
        mode : {"ideal", "open_loop", "verify"}

        Returns
        -------
        int
            Number of pairs refreshed.
        """
        if self.mapping != "differential":
            raise ValueError("refresh() needs mapping='differential'")
        xp = self._xp
        mask = self._asarray("mask", mask)
        if mask.shape != self.shape or mask.dtype != bool:
            raise ValueError(
                f"mask must be a boolean array of shape {self.shape}, got {mask.dtype} {mask.shape}"
            )
        if _FUSED_REFRESH and self.backend == "numba" and mode in _FUSED_MODES:
            n = self._refresh_fused(mask, mode)
            if n >= 0:
                return n
        syn = xp.flatnonzero(mask)
        if syn.size == 0:
            return 0
        N = self.out_features * self.in_features
        check_choice("mode", mode, PROGRAM_MODES)
        # read the weights of the masked pairs (one read: read noise applies)
        g = self._read_subset(xp.concatenate([syn, syn + N]))
        w = self.alpha * (g[: syn.size] - g[syn.size :])
        if mode == "ideal":
            self._reset(xp.concatenate([syn, syn + N]))
        if mode != "verify":
            self._program(syn, w, mode, "one_sided")
        else:
            # the weight cache of the refreshed pairs once, from their final conductances
            # (what the RESET's and the verify's own updates would leave: ``syn`` is sorted
            # and unique, both devices of each pair were programmed)
            self._program(syn, w, mode, "one_sided", touch=False)
            if self._wcache is not None:
                Wf = self._wcache.reshape(-1)
                Wf[syn] = self.alpha * (self.G[syn] - self.G[syn + N])
        self.refreshes[syn] += 1
        return int(syn.size)
