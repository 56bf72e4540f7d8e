"""Batch-1 (online) training steps of an :class:`~synapse_sim.models.mlp.MLP` on device arrays,
fused per layer (:mod:`devices.kernels.online`).

:func:`online_trainer` returns an :class:`OnlineTrainer` when every part of a run is covered, or
``None`` (and :func:`why_not` says why) so that the caller keeps the general path. A trainer
computes exactly what the general loop of :class:`synapse_sim.studies.train.TrainStudy` computes
(``MLP.forward``, ``MLP.loss_and_delta``, ``MLP.backward``, then
:meth:`learning_rules.PulseRule.update` per layer): the same numpy expressions for the network, one
kernel call per layer for the update and its refreshes. The bit-for-bit equality is tested
(``tests/synapse_sim/test_online_fast_path.py``).

The arrays' forward-read settings of ``neurosim_compat`` are covered too (``synapse-sim train
--neurosim-compat``, :mod:`devices.converters`): a deterministic DAC, the current read, the
partial-sum ADC or a deterministic uniform ADC, and NeuroSim's pulse counts (``count=
"neurosim"``). The read keeps :meth:`devices.DeviceArray.matmul`'s BLAS products (the column
sums) and does the converters around them in small kernels with the same float operations
(:func:`devices.kernels.online.quantize_row`, :func:`devices.kernels.online.partial_sums`); the
backward read is :meth:`devices.DeviceArray.rmatmul` itself.
"""

from __future__ import annotations

import numpy as np

import devices
from devices.converters import PartialSumADC
from devices.kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL, numpy_calls
from devices.kernels import online as _kern

__all__ = ["OnlineTrainer", "online_trainer", "why_not"]

_IP_COUNTER = _kern.IP_SLOTS.index("counter")
_IP_READS = (_kern.IP_SLOTS.index("reads_refresh"), _kern.IP_SLOTS.index("reads_verify"))
#: Presentations per call of the whole-presentation kernel (the progress bar moves between
#: calls)
_BLOCK = 128


def why_not(net, rule) -> str | None:
    """Why ``net`` trained with ``rule`` cannot use the fused batch-1 path (``None``: it can).

    Parameters
    ----------
    net : MLP
    rule : learning_rules.PulseRule

    Returns
    -------
    str or None
    """
    if net.biases is not None:
        return "biases"
    if net.loss != "sse" or net.activation not in ("sigmoid", "relu"):
        return f"loss {net.loss!r} / activation {net.activation!r}"
    if rule.method not in ("bidirectional", "unidirectional"):
        return f"rule method {rule.method!r}"
    if rule.pulse_count != "nominal" or rule.lr_fit:
        return "adaptive pulse counts (pulse_count='state' or lr_fit)"
    if rule.method != "bidirectional" or rule.rounding != "nearest":
        neurosim = [getattr(a, "count", "exact") == "neurosim" for a in net.layers]
        if any(neurosim):  # the general path refuses these
            return f"count='neurosim' with a {rule.method} rule and {rule.rounding} rounding"
    if rule.method == "unidirectional":
        if rule.refresh_every != 1:
            return f"refresh_every={rule.refresh_every}"
        if rule.refresh_mode not in ("verify", "ideal"):
            return f"refresh_mode={rule.refresh_mode!r}"
        if rule.refresh == "preemptive":
            return "refresh='preemptive'"
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, devices.DeviceArray):
            return f"layer {i} is not a devices.DeviceArray"
        if layer.backend != "numba":
            return f"layer {i} backend {layer.backend!r}"
        for name in ("dac", "adc"):
            conv = getattr(layer, name)
            if getattr(conv, "stochastic", False):
                return f"layer {i} has a stochastic {name.upper()}"
        var = layer.variability
        if var.read_sigma > 0 or var.reset_sigma > 0:
            return f"layer {i} has read or RESET noise"
        if rule.method == "unidirectional" and layer.mapping != "differential":
            return f"layer {i} mapping {layer.mapping!r} with a unidirectional rule"
    return None


def online_trainer(net, rule, lrs) -> OnlineTrainer | None:
    """An :class:`OnlineTrainer` for ``net``, ``rule`` and per-layer learning rates ``lrs``, or
    ``None`` when :func:`why_not` names a setting the fused path does not cover."""
    if why_not(net, rule) is not None:
        return None
    return OnlineTrainer(net, rule, lrs)


def _read_consts(arr):
    """Constants of the forward read of ``arr`` in :meth:`OnlineTrainer._read` (``None``: the
    plain read ``W x``), computed with the expressions of ``DeviceArray`` (the same floats)."""
    dac, adc = arr.dac, arr.adc
    if dac is None and adc is None and arr.read == "weight":
        return None
    dq = None if dac is None else (dac.lo, dac.hi, dac.step, float(2**dac.bits - 1))
    dG = arr.device.dG
    if isinstance(adc, PartialSumADC):
        gain = arr.w_max if arr.read == "current" else arr.alpha * dG
        step = adc.step(arr.in_features, dG)
        return dq, (step, step / dG, gain), None
    scale = arr.w_max / (arr.alpha * dG) if arr.read == "current" else None
    return dq, None, scale


class OnlineTrainer:
    """Fused batch-1 presentations (see the module docstring; build with :func:`online_trainer`).

    Parameters
    ----------
    net : MLP
    rule : learning_rules.PulseRule
    lrs : sequence of float
        Learning rate of every layer.
    """

    def __init__(self, net, rule, lrs):
        reason = why_not(net, rule)
        if reason is not None:
            raise ValueError(f"the fused batch-1 path does not cover this run: {reason}")
        self.net, self.rule = net, rule
        self.lrs = [float(v) for v in lrs]
        packed = [self._layer_consts(a, lr) for a, lr in zip(net.layers, self.lrs, strict=True)]
        self._fpk = np.stack([fp for fp, _, _ in packed])
        self._ipk = np.stack([ip for _, ip, _ in packed])
        self._luts = [lut for _, _, lut in packed]
        self._keys = np.zeros(len(net.layers), dtype=np.uint64)
        self._bufs = _kern.make_buffers([layer.shape for layer in net.layers])
        self._reads = [_read_consts(layer) for layer in net.layers]
        self._packs = [None] * len(net.layers)
        # per layer: the DAC output row (with its 1-D view) and the conductance views of the
        # partial-sum read (with the G they view), kept from one step to the next
        self._dac_out = [None] * len(net.layers)
        self._g_views = [None] * len(net.layers)
        self._args = None
        # sigmoid steps: layer outputs, squared error, output delta, hidden deltas
        outs = [np.empty((1, layer.shape[0])) for layer in net.layers]
        self._glue = (outs, np.empty_like(outs[-1]), np.empty_like(outs[-1]),
                      [np.empty_like(o) for o in outs[:-1]])  # fmt: skip
        # their rows (1-D views, the kernels' arguments), made once instead of per step
        outs, sq, d_out, hidden = self._glue
        self._rows = ([o[0] for o in outs], sq[0], d_out[0], [h[0] for h in hidden],
                      tuple(o[0] for o in outs[:-1]),
                      tuple(d[0] for d in [*hidden, d_out]))  # fmt: skip
        # the rows the kernel reads (held by its arguments): the input row, then the hidden
        # activations and the deltas, the sigmoid step's own rows (written in place)
        self._xin = (np.empty(net.layers[0].shape[1]), *self._rows[4])
        self._din = self._rows[5]
        # a sigmoid presentation's products go into buffers kept from one presentation to the
        # next: per layer its pre-activation (1, out), per hidden layer the backward read of the
        # layer above (1, out); with their rows, and the input buffer as a (1, in) row
        zb = [np.empty((1, layer.shape[0])) for layer in net.layers]
        bb = [np.empty((1, layer.shape[1])) for layer in net.layers[1:]]
        self._prod = (zb, [z[0] for z in zb], bb, [b[0] for b in bb], self._xin[0][None, :])
        # the read plan: per layer whether its forward / backward read is the plain product
        # of the cached weights (else _read / _back_read), and those weights and their
        # transpose (rebuilt with the kernel's arguments, see _weights)
        self._plain = (
            [rc is None for rc in self._reads],
            [self._back_plain(layer) for layer in net.layers],
        )
        self._wts = None
        self._general_steps = 0  # layer updates that took the general path (see _apply)
        # whole presentations in one kernel call (_epoch_blocks): numpy's BLAS product and tanh
        # loop called from the kernel, checked against numpy on this installation (None: not
        # available, or a read the kernel does not cover)
        self._hk = self._rc = None
        rc = self._block_reads()
        if rc is not None:
            hk = numpy_calls.hooks(tuple(layer.shape for layer in net.layers))
            if hk is not None:
                self._hk, self._rc = np.array(hk, dtype=np.int64), rc

    def _layer_consts(self, arr, lr) -> tuple:
        rule = self.rule
        dev = arr.device
        if rule.method == "unidirectional":
            route = ROUTE_UNIDIRECTIONAL
        elif arr.mapping == "reference" or rule.side == "plus":
            route = ROUTE_SINGLE
        else:
            route = ROUTE_PUSH_PULL
        up, dn = arr.nominal_step(rule.method, rule.side)
        uni = rule.method == "unidirectional"
        pn, const_n, lut_n, _ = dev.kernel_params(1, None)
        tol = 0.5 * arr.nominal_step("unidirectional")[0] if uni else 0.0
        p_up, p_dn = dev.levels("ltp"), dev.levels("ltd")
        fp, ip = _kern.pack(
            pn[:, 0],
            const_n,
            lr=lr,
            step_up=up,
            step_dn=dn,
            theta=rule.theta,
            alpha=arr.alpha,
            gref=-1.0 if arr.mapping == "differential" else arr.g_ref,
            thr=rule.refresh_threshold if uni else 0.0,
            half_step=0.5 / dev.levels("ltp"),
            margin=rule.refresh_margin if (uni and rule.refresh == "hysteresis") else 0.0,
            dg_nom=dev.dG,
            w_max=arr.w_max,
            tol_g=tol / arr.alpha,
            n_max=0 if rule.n_max is None else rule.n_max,
            stochastic=rule.rounding == "stochastic",
            route=route,
            mode=_kern.REFRESH_IDEAL if rule.refresh_mode == "ideal" else _kern.REFRESH_VERIFY,
            cap=2 * dev.levels("ltp"),
            counter=0,
            p_up=p_up,
            p_dn=p_dn,
            w_range=up * p_up,
            count=_kern.COUNT_NEUROSIM if arr.count == "neurosim" else _kern.COUNT_EXACT,
        )
        return fp, ip, lut_n

    def _kernel_layers(self) -> tuple:
        """Every layer's tuple for :func:`devices.kernels.online.step_layers`, rebuilt for a
        layer whose records, weight cache or refresh counts are no longer the objects packed
        (a restored checkpoint, a write through the general path); the keys refreshed."""
        changed = False
        for li, arr in enumerate(self.net.layers):
            wc = arr.weight_cache()
            pk = self._packs[li]
            if (
                pk is None
                or pk[0] is not arr.state
                or pk[1] is not arr.params
                or pk[2] is not wc
                or pk[3] is not arr.refreshes
                or pk[4] is not arr.gmax_i
                or pk[5] is not arr.cnt_read
            ):
                self._packs[li] = (
                    arr.state, arr.params, wc, arr.refreshes, arr.gmax_i, arr.cnt_read
                )  # fmt: skip
                changed = True
            self._keys[li] = arr.key
        if changed:
            raw = []
            for (st, pa, wc, refr, gmax_i, reads), lut in zip(self._packs, self._luts, strict=True):
                st, pa, gmax_i = _kern.compact_uniform(st, pa, gmax_i)
                raw.append((st, pa, wc.reshape(-1), gmax_i, lut, refr, reads))
            layers = _kern.layer_tuples(raw)
            self._wts = None
            self._args = _kern.kernel_args(
                layers, self._fpk, self._ipk, self._keys, self._bufs, (self._xin, self._din)
            )
        return self._args

    def _update(self, lo: int, hi: int, xs, ds, step: int) -> tuple[int, int]:
        """Updates of layers ``lo .. hi - 1`` for one presentation (what :meth:`learning_rules.
        PulseRule.update` does at batch 1 for each), one kernel call for all of them; a layer
        with a non-finite input or error takes the general path (which raises as it does)."""
        for li in range(lo, hi):  # the rows the kernel reads
            for name, row, buf in (("x", xs[li], self._xin[li]), ("d", ds[li], self._din[li])):
                if row is not buf:
                    if row.shape != buf.shape:
                        raise ValueError(
                            f"layer {li}: {name} has shape {row.shape}; the layer takes {buf.shape}"
                        )
                    np.copyto(buf, row)
        return self._apply(lo, hi, step)

    def _apply(self, lo: int, hi: int, step: int, args=None, first=None) -> tuple[int, int]:
        """:meth:`_update` once the rows are in the kernel's buffers (``self._xin``,
        ``self._din``); ``args``: the kernel's arguments when the caller has just checked them
        (:meth:`_kernel_layers`; else checked here). ``first``: the result of
        :func:`devices.kernels.online.step_layers` for layers ``lo .. hi - 1`` when the caller
        has called it (a whole-presentation kernel), taken instead of the first call."""
        layers = self.net.layers
        xs, ds = self._xin, self._din
        pulses = refreshes = 0
        while lo < hi:
            ipk = self._ipk
            if first is None:
                if args is None:
                    args = self._kernel_layers()
                for li in range(lo, hi):
                    ipk[li, _IP_COUNTER] = layers[li].counter
                stop, p, r, p_stop, bad = _kern.step_layers(args, lo, hi)
            else:
                (stop, p, r, p_stop, bad), first = first, None
            # the counters of the layers completed, and of a layer stopped by non-finite
            # requests (its other synapses were written)
            for li in range(lo, stop + 1 if stop < hi and p_stop >= 0 else stop):
                layers[li].counter = int(ipk[li, _IP_COUNTER])
            if r > 0:  # the refreshes' device reads, as DeviceArray.refresh counts them
                for li in range(lo, stop):
                    reads = layers[li].subset_reads
                    reads["refresh"] += int(ipk[li, _IP_READS[0]])
                    reads["verify"] += int(ipk[li, _IP_READS[1]])
                    ipk[li, _IP_READS[0]] = ipk[li, _IP_READS[1]] = 0
            pulses += p
            refreshes += r
            if stop == hi:
                break
            if p_stop >= 0:
                raise ValueError(
                    f"dW contains {bad} NaN or infinite values; those synapses were not updated"
                )
            self._general_steps += 1
            st = self.rule.update(
                layers[stop], xs[stop][None, :], ds[stop][None, :], self.lrs[stop], step=step
            )
            args = None  # the general path may have replaced the layer's state or cache
            pulses += st["pulses"]
            refreshes += st["refreshes"]
            lo = stop + 1
        return pulses, refreshes

    def update_layer(self, li: int, x, d, step: int = 0) -> tuple[int, int]:
        """The update of layer ``li`` alone for one presentation (what
        :meth:`learning_rules.PulseRule.update` does at batch 1).

        Parameters
        ----------
        li : int
            Layer index.
        x : numpy.ndarray, shape (in,)
            The layer's input (float64, contiguous).
        d : numpy.ndarray, shape (out,)
            The error of its output.
        step : int
            Index of the presentation.

        Returns
        -------
        (int, int)
            Device pulses sent, pairs refreshed.
        """
        empty = self._bufs[1][:0]  # the other layers' rows: not read
        n = len(self.net.layers)
        xs = tuple(x if i == li else empty for i in range(n))
        ds = tuple(d if i == li else empty for i in range(n))
        return self._update(li, li + 1, xs, ds, step)

    def _read(self, li, a):
        """Forward read of layer ``li`` for the row ``a`` (shape (1, in)): what
        :meth:`devices.DeviceArray.matmul` computes."""
        layer = self.net.layers[li]
        rc = self._reads[li]
        if rc is None:
            layer.array_reads["forward"] += 1  # one input vector, as DeviceArray.matmul counts
            return a @ layer.weight_cache().T
        dac, psum, scale = rc
        exact, vsum = 0, 0.0
        v = a
        if dac is not None:
            buf = self._dac_out[li]
            if buf is None or buf[0].shape != a.shape:
                out = np.empty(a.shape)
                buf = self._dac_out[li] = (out, out[0])
            v = buf[0]  # only read below, within this call
            exact, vsum = _kern.quantize_row(a[0], *dac, buf[1])
            if exact < 0:  # NaN: the array raises as it does on the general path
                return layer.matmul(a)
        layer.array_reads["forward"] += 1
        if psum is None:
            y = v @ layer.weight_cache().T
            if scale is not None:  # current read without a partial-sum ADC
                y = y * scale
            return layer.adc(y) if layer.adc is not None else y
        step, ratio, gain = psum
        G = layer.G
        gv = self._g_views[li]
        if gv is None or gv[0] is not G or not G.flags.c_contiguous:
            Gv = G.reshape(layer.n_per_synapse, *layer.shape)  # a view of the state's G
            diff = layer.mapping == "differential"
            gv = self._g_views[li] = (G, Gv[0].T, Gv[1].T if diff else None)
        i_col = v @ gv[1]
        if gv[2] is not None:  # differential pair
            i_ref = (v @ gv[2])[0]
        elif exact:  # a sum of whole numbers: exact in any order
            i_ref = np.array([vsum * layer.g_ref])
        else:
            i_ref = (v.sum(axis=-1, keepdims=True) * layer.g_ref)[0]
        z = np.empty(i_col.shape)
        _kern.partial_sums(i_col[0], i_ref, step, ratio, gain, z[0])
        return z

    def _back_read(self, li, d):
        """Backward read of layer ``li`` (:meth:`devices.DeviceArray.rmatmul` of the row ``d``):
        the weights as read cell by cell unless converters act on it too."""
        layer = self.net.layers[li]
        if self._back_plain(layer):
            layer.array_reads["backward"] += 1
            return d @ layer.weight_cache()
        return layer.rmatmul(d)

    @staticmethod
    def _back_plain(layer) -> bool:
        """Whether ``layer``'s backward read is the plain product of its cached weights."""
        return layer.converters == "forward" or (layer.dac is None and layer.adc is None)

    def _weights(self):
        """The kernel's arguments (:meth:`_kernel_layers`, checked now) with every layer's
        cached weights and their transposes (the plain reads' operands): the same objects from
        one presentation to the next until the arguments are rebuilt."""
        args = self._kernel_layers()
        if self._wts is None:
            ws = [layer.weight_cache() for layer in self.net.layers]
            self._wts = (ws, [w.T for w in ws])
        return args, self._wts

    def step(self, x, y, t, step: int = 0) -> tuple[int, float, int, int]:
        """One presentation: forward, loss, backward and the update of every layer.

        Parameters
        ----------
        x : numpy.ndarray, shape (1, in)
            The input row.
        y : int
            Its label.
        t : numpy.ndarray, shape (1, out)
            Its target row.
        step : int
            Index of the presentation.

        Returns
        -------
        (int, float, int, int)
            Correct (0/1), loss, device pulses, refreshes.
        """
        net = self.net
        n = len(net.layers)
        x0 = x[0]
        if x0.dtype != np.float64 or not x0.flags.c_contiguous:  # the kernel's rows: float64
            x0 = np.ascontiguousarray(x0, dtype=np.float64)
        if net.activation == "sigmoid" and t.shape == self._glue[1].shape:
            return self._sigmoid_step(x0, y, t[0], step)
        acts = [x]
        zs = []
        a = x
        # the expressions of MLP.forward / loss_and_delta / backward (2-D rows, the same BLAS
        # calls), so the numbers are the general path's bit for bit
        for i in range(n):
            z = self._read(i, a)
            zs.append(z)
            if i < n - 1 and net.activation == "relu":
                a = np.maximum(z, 0.0)
            else:
                a = 0.5 * (1.0 + np.tanh(0.5 * z))
            acts.append(a)
        out = acts[-1]
        diff = t - out  # MLP.loss_and_delta, loss "sse"
        loss = (diff * diff).sum(axis=1)
        d = -2.0 * diff * out * (1.0 - out)
        deltas = [None] * n  # MLP.backward
        deltas[-1] = d
        for i in range(n - 2, -1, -1):
            back = self._back_read(i + 1, deltas[i + 1])
            if net.activation == "sigmoid":
                a = acts[i + 1]
                deltas[i] = back * (a * (1.0 - a))
            else:
                deltas[i] = back * (zs[i] > 0).astype(zs[i].dtype)
        xs = (x0,) + tuple(a[0] for a in acts[1:-1])
        ds = tuple(d[0] for d in deltas)
        pulses, refreshes = self._update(0, n, xs, ds, step)
        return int(out[0].argmax() == y), float(loss[0]), pulses, refreshes

    def _sigmoid_step(self, x0, y, t, step, plan=None):
        """:meth:`step` of a sigmoid network: the same numbers, with the element-wise parts
        (the logistic from ``tanh(z / 2)``, the error, the squared error, the output and hidden
        deltas) in small kernels that write into buffers kept from one presentation to the
        next; numpy does the products (into kept buffers too) and ``tanh`` (its SIMD ``tanh``
        is not libm's). ``x0`` is the input row; ``plan``: ``(args, (weights, transposes))``
        of :meth:`_weights` when the caller has just made it (an epoch, once), else made here.
        The input row is copied into the kernel's buffer and read from there."""
        args, (ws, wts) = self._weights() if plan is None else plan
        layers = self.net.layers
        n = len(layers)
        acts, _, d_out, hidden = self._glue
        act_r, sq_r, d_out_r, hidden_r, _, _ = self._rows
        zb, zrow, bb, brow, x2d = self._prod
        fwd_plain, back_plain = self._plain
        x2d[0] = x0  # the kernel's input row, read by the first product below
        a = x2d
        for i in range(n):
            if fwd_plain[i]:  # DeviceArray.matmul's product, into a kept buffer
                layers[i].array_reads["forward"] += 1
                z = np.matmul(a, wts[i], out=zb[i])
                zr = zrow[i]
            else:
                z = self._read(i, a)  # a new array: worked on in place
                zr = z[0]
            np.multiply(z, 0.5, out=z)
            np.tanh(z, out=z)
            if i < n - 1:
                _kern.logistic_from_tanh(zr, act_r[i])
                a = acts[i]
        # MLP.loss_and_delta's sum(diff * diff, axis=1): numpy's pairwise sum, in the kernel
        correct, loss = _kern.sse_output(zr, t, y, act_r[n - 1], sq_r, d_out_r)
        d = d_out
        for i in range(n - 2, -1, -1):
            if back_plain[i + 1]:
                layers[i + 1].array_reads["backward"] += 1
                br = brow[i]
                np.matmul(d, ws[i + 1], out=bb[i])
            else:
                br = self._back_read(i + 1, d)[0]
            _kern.sigmoid_delta(br, act_r[i], hidden_r[i])
            d = hidden[i]
        pulses, refreshes = self._apply(0, n, step, args)
        return correct, loss, pulses, refreshes

    def epoch(self, x, y, eye, order, step0: int = 0, bar=None) -> tuple[int, float, int, int]:
        """Present ``x[order]`` one by one (the general loop's accumulation of the metrics).

        Parameters
        ----------
        x : numpy.ndarray, shape (n, in)
        y : numpy.ndarray of int, shape (n,)
        eye : numpy.ndarray
            Identity of the classes (targets are its rows).
        order : numpy.ndarray of int
            Presentation order.
        step0 : int
            Index of the first presentation.
        bar : tqdm bar, optional
            Advanced once per presentation.

        Returns
        -------
        (int, float, int, int)
            Correct, summed loss, pulses and refreshes over the epoch.
        """
        correct = 0
        loss_sum = 0.0
        pulses = refreshes = 0
        n_cls = eye.shape[0]
        # a sigmoid network on float64 rows: the per-row checks of step() hold for every row
        direct = (
            self.net.activation == "sigmoid"
            and x.ndim == 2
            and x.dtype == np.float64
            and x.flags.c_contiguous
            and eye.ndim == 2
            and eye.shape[1:] == self._glue[1].shape[1:]
        )
        if direct and self._hk is not None:
            plan = self._block_plan(x, y, eye, order)
            if plan is not None:
                return self._epoch_blocks(x, y, eye, order, plan, step0, bar)
        plan, seen = None, -1
        todo = 0  # presentations not yet shown on the bar (updated every 64: a bar's update
        # costs about as much as a small kernel call)
        try:
            for k, i in enumerate(order.tolist()):
                yi = int(y[i])
                if direct and 0 <= yi < n_cls:
                    if seen != self._general_steps:  # first, or the general path ran
                        plan, seen = self._weights(), self._general_steps
                    c, loss, p, r = self._sigmoid_step(x[i], yi, eye[yi], step0 + k, plan)
                else:
                    t = eye[yi : yi + 1] if 0 <= yi < n_cls else eye[y[i : i + 1]]  # same row
                    c, loss, p, r = self.step(x[i : i + 1], yi, t, step0 + k)
                    seen = -1
                correct += c
                loss_sum = loss_sum + loss
                pulses += p
                refreshes += r
                todo += 1
                if todo == 64 and bar is not None:
                    bar.update(todo)
                    todo = 0
        finally:
            if bar is not None and todo:
                bar.update(todo)
        return correct, float(loss_sum), pulses, refreshes

    def _block_reads(self):
        """Per layer the forward read for the whole-presentation kernel (a row of
        :data:`devices.kernels.online.RC_SLOTS`), or ``None`` when a presentation of this
        network cannot run in it (not sigmoid, a backward read with converters, a forward read
        with an ADC other than the partial-sum one)."""
        net = self.net
        if net.activation != "sigmoid" or not all(self._plain[1][1:]):
            return None
        rc = np.zeros((len(net.layers), len(_kern.RC_SLOTS)))
        for li, (layer, consts) in enumerate(zip(net.layers, self._reads, strict=True)):
            row = rc[li]
            row[10] = layer.g_ref
            row[11] = layer.mapping == "differential"
            if consts is None:
                continue
            dac, psum, scale = consts
            if psum is None and layer.adc is not None:
                return None
            if dac is not None:
                row[0] = 1.0
                row[1:5] = dac
            if psum is not None:
                row[5] = 1.0
                row[6:9] = psum
            elif scale is not None:
                row[9] = scale
        return rc

    def _block_plan(self, x, y, eye, order):
        """The whole-presentation kernel's data for this epoch (``(BlockArgs, acc, facc)``),
        or ``None`` when the per-presentation loop must present it (target rows not float64 in
        C order, labels not integers, an index outside ``x``, a read-only ``x``): that loop
        handles such input as it always has (it raises where indexing raises)."""
        n = x.shape[0]
        ys = np.asarray(y)
        idx = np.asarray(order)
        if (
            eye.dtype != np.float64
            or not eye.flags.c_contiguous
            or ys.ndim != 1
            or ys.shape[0] != n
            or ys.dtype.kind not in "iu"
            or idx.ndim != 1
            or idx.dtype.kind not in "iu"
        ):
            return None
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
            return None
        if ys.dtype.kind == "u" and ys.size and int(ys.max()) > np.iinfo(np.int64).max:
            return None
        if not x.flags.writeable:  # a read-only array is another numba type (a new compile)
            return None
        acc = np.zeros(4, dtype=np.int64)
        facc = np.zeros(1)
        shapes = [layer.shape for layer in self.net.layers]
        blk = _kern.block_args(self._hk, self._rc, x, ys, eye, idx, shapes, acc, facc)
        return blk, acc, facc

    def _block_sync(self, shown: int) -> None:
        """After a whole-presentation kernel call: the arrays' call counters and refresh reads
        from the packed scalars, and the plain reads of the ``shown`` presentations (what
        :meth:`_apply` and :meth:`_sigmoid_step` record per presentation)."""
        ipk = self._ipk
        for li, layer in enumerate(self.net.layers):
            layer.counter = int(ipk[li, _IP_COUNTER])
            reads = layer.subset_reads
            reads["refresh"] += int(ipk[li, _IP_READS[0]])
            reads["verify"] += int(ipk[li, _IP_READS[1]])
            ipk[li, _IP_READS[0]] = ipk[li, _IP_READS[1]] = 0
            layer.array_reads["forward"] += shown
            if li > 0:
                layer.array_reads["backward"] += shown

    def _epoch_blocks(self, x, y, eye, order, plan, step0, bar):
        """:meth:`epoch` of a sigmoid network with plain reads, whole presentations at a time
        (:func:`devices.kernels.online.present_block`, up to ``_BLOCK`` per call): the same
        numbers as presentation after presentation. A presentation the kernel leaves (a label
        outside ``eye``, a layer update for the general path) is finished here as
        :meth:`step` / :meth:`_apply` finish it."""
        blk, acc, facc = plan  # totals: correct, pulses, refreshes (and the call's reads); loss
        layers = self.net.layers
        n = len(layers)
        k, total = 0, len(order)
        while k < total:
            args = self._kernel_layers()
            ipk = self._ipk
            for li in range(n):
                ipk[li, _IP_COUNTER] = layers[li].counter
            k1 = min(total, k + _BLOCK)
            acc[3] = 0
            try:
                res = _kern.present_block(args, blk, k, k1)
            finally:  # counters and reads kept current even when interrupted (Ctrl-C)
                self._block_sync(int(acc[3]))
            status, kk = int(res[0]), int(res[1])
            if status == _kern.BLOCK_STEP:  # the per-presentation path, as epoch() takes it
                i = int(order[kk])
                yi = int(y[i])
                t = eye[yi : yi + 1] if 0 <= yi < eye.shape[0] else eye[y[i : i + 1]]
                c, loss, p, r = self.step(x[i : i + 1], yi, t, step0 + kk)
            elif status == _kern.BLOCK_LAYER:
                c, loss = int(res[7]), res[8]
                p, r = self._apply(0, n, step0 + kk, args, first=tuple(res[2:7]))
            if status != _kern.BLOCK_DONE:  # the presentation finished here is added
                acc[0] += c
                acc[1] += p
                acc[2] += r
                facc[0] = facc[0] + loss
                kk += 1
            if bar is not None:
                bar.update(kk - k)
            k = kk
        return int(acc[0]), float(facc[0]), int(acc[1]), int(acc[2])
