"""The VRNN's step loop as one autograd node, written the way cuDNN writes its LSTM.

Why this exists: with ordinary autograd every op of every step is taped, and the backward pass forms every
in-loop weight gradient once per step — T thin matmuls, each writing and accumulating a weight-sized buffer.
Here the forward runs untaped into preallocated time-major buffers; the backward walks the steps in reverse
computing only the gradients with respect to activations (the matmuls with the weights that the recurrence
needs), and forms each weight's gradient after the loop as one large matmul over all T x B rows. Elementwise
derivative factors that do not depend on the incoming gradient are computed for all steps at once, before the
reverse loop, so the loop body is a handful of ops. Nothing reads a value back to the host.

The step (h, c: the LSTM state before x_t; ``post_hidden``/``phi_z``: Linear+ReLU layers):

    a        = [qx_t | gx_t] + h @ W_h^T      = [a_post | a_gates]
    r        = ReLU(a_post) -> post_hidden -> s = Linear_q(r) = [mu | s_std]
    std      = softplus(s_std) + MIN_STD,  z = mu + eps_t * std
    pz       = phi_z(z)
    gates    = a_gates + pz @ W_g^T           -> i, f, o = sigmoid, g = tanh
    c'       = f * c + i * g,  h' = o * tanh(c')

``qx_t`` and ``gx_t`` (the x-dependent halves of the posterior's first layer and the LSTM gates, with their
biases) come in as one tensor ``x_proj = [qx | gx]`` computed over the whole sequence by the caller, so one
``addmm`` per step forms every pre-activation that h feeds; their gradients flow back to the caller.

With ``prior`` layers (SRNN's "Resq", ``backend.posterior_residual``) the posterior's output is a residual on
the prior mean, so the prior's mean runs inside the loop too: ``x_proj = [qx | gx | px]`` and ``W_h`` gain the
prior's first layer (``px_t``: its bias plus whatever the caller adds to h before the prior, e.g. a condition),

    rp       = ReLU(a_prior) -> prior_hidden -> mu_p = Linear_p(rp)     (the prior mean's half only)
    mu       = mu_p + delta,   delta = the posterior's mean output above

and the rest of the step is unchanged. The prior's variance is not needed in the loop (z draws from q).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_STD = 1e-3  # keeps the Gaussians' densities finite (shared with vrnn.py)


def _unflatten(flat, n_post_hidden, n_phi_z):
    """-> (posterior hidden layers, posterior output, phi_z layers, prior hidden layers, prior mean layer or
    None); each layer a (weight, bias) pair. The prior's layers follow phi_z's when there are any."""
    pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
    end = n_post_hidden + 1 + n_phi_z
    prior = pairs[end:]
    return (pairs[:n_post_hidden], pairs[n_post_hidden], pairs[n_post_hidden + 1 : end], prior[:-1],
            prior[-1] if prior else None)


def _steps(x, T):
    """Per-step views of an incoming gradient, or None at every step where autograd passed none."""
    return x.unbind(0) if x is not None else [None] * T


def _mm_plus(bias, a, b):
    return torch.mm(a, b) if bias is None else torch.addmm(bias, a, b)


class _FusedFilter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keep, n_post_hidden, n_phi_z, x_proj, eps, h0, c0, w_h, w_g, *layers):
        post_hidden, (w_q, b_q), phi_z, prior_hidden, prior_mu = _unflatten(layers, n_post_hidden, n_phi_z)
        T, B = x_proj.shape[:2]
        H, L = h0.shape[1], eps.shape[2]
        P = w_q.shape[1]
        Q = x_proj.shape[2] - P - 4 * H  # the prior's first-layer width (0: no prior in the loop)
        G = P + 4 * H  # the end of the gate block in a
        new = x_proj.new_empty
        n = T if keep else 1  # per-step scratch kept for the backward pass, or reused when nothing needs it
        hs = new(T + 1, B, H)  # hs[t] = h_{t-1}; hs[T] = final h
        cs = new(T + 1 if keep else 2, B, H)
        s_buf, std_buf, z_buf, pz_buf = new(T, B, 2 * L), new(T, B, L), new(T, B, L), new(T, B, P)
        # a_buf: [ReLU'd posterior layer | gate activations | ReLU'd prior layer]
        a_buf, tc_buf = new(n, B, G + Q), new(n, B, H)
        ph_bufs = [new(n, B, P) for _ in post_hidden]
        pzh_bufs = [new(n, B, P) for _ in phi_z[:-1]]
        prh_bufs = [new(n, B, w.shape[0]) for w, _ in prior_hidden]
        hs[0].copy_(h0)
        cs[0].copy_(c0)
        w_h_t, w_g_t, w_q_t = w_h.t(), w_g.t(), w_q.t()
        post_hidden_t = [(w.t(), b) for w, b in post_hidden]
        phi_z_t = [(w.t(), b) for w, b in phi_z]
        prior_hidden_t = [(w.t(), b) for w, b in prior_hidden]
        w_pm_t, b_pm = (prior_mu[0].t(), prior_mu[1]) if prior_mu is not None else (None, None)
        # Every per-step view made once up front (one unbind each), not by slicing inside the loop.
        x_steps, eps_steps = x_proj.unbind(0), eps.unbind(0)
        a_steps, tc_steps = a_buf.unbind(0), tc_buf.unbind(0)
        post_steps, gate_steps = a_buf[:, :, :P].unbind(0), a_buf[:, :, P:G].unbind(0)
        ifo_steps, g_steps = a_buf[:, :, P : P + 3 * H].unbind(0), a_buf[:, :, P + 3 * H : G].unbind(0)
        prior_steps = a_buf[:, :, G:].unbind(0)
        prh_steps = [buf.unbind(0) for buf in prh_bufs]
        mu_steps, s_std_steps = s_buf[:, :, :L].unbind(0), s_buf[:, :, L:].unbind(0)
        ph_steps = [buf.unbind(0) for buf in ph_bufs]
        phi_z_out = [buf.unbind(0) for buf in pzh_bufs] + [pz_buf.unbind(0)]
        hs_steps, cs_steps = hs.unbind(0), cs.unbind(0)
        h = hs_steps[0]
        for t in range(T):
            k = t if keep else 0
            c_in, c_out = (t, t + 1) if keep else (t % 2, (t + 1) % 2)
            torch.addmm(x_steps[t], h, w_h_t, out=a_steps[k])
            r = post_steps[k].relu_()
            for (w, b), steps in zip(post_hidden_t, ph_steps):
                r = torch.addmm(b, r, w, out=steps[k]).relu_()
            torch.addmm(b_q, r, w_q_t, out=s_buf[t])
            if prior_mu is not None:  # Resq: mu = mu_p(h) + delta
                rp = prior_steps[k].relu_()
                for (w, b), steps in zip(prior_hidden_t, prh_steps):
                    rp = torch.addmm(b, rp, w, out=steps[k]).relu_()
                mu_steps[t].addmm_(rp, w_pm_t).add_(b_pm)
            std = torch.add(F.softplus(s_std_steps[t]), MIN_STD, out=std_buf[t])
            p = torch.addcmul(mu_steps[t], eps_steps[t], std, out=z_buf[t])
            for j, ((w, b), steps) in enumerate(zip(phi_z_t, phi_z_out)):
                p = torch.addmm(b, p, w, out=steps[t if j == len(phi_z_t) - 1 else k]).relu_()
            gate_steps[k].addmm_(p, w_g_t)
            ifo_steps[k].sigmoid_()
            g = g_steps[k].tanh_()
            i, f, o = ifo_steps[k].chunk(3, dim=1)
            c = torch.mul(f, cs_steps[c_in], out=cs_steps[c_out]).addcmul_(i, g)
            h = torch.mul(o, torch.tanh(c, out=tc_steps[k]), out=hs_steps[t + 1])
        if keep:
            ctx.save_for_backward(hs, cs, s_buf, std_buf, z_buf, pz_buf, a_buf, tc_buf, eps, w_h, w_g,
                                  *layers, *ph_bufs, *pzh_bufs, *prh_bufs)
            ctx.sizes = (n_post_hidden, n_phi_z, len(prior_hidden), H, P, L)
        mu = s_buf[:, :, :L].contiguous()
        logvar = 2.0 * torch.log(std_buf)
        return hs[:T], pz_buf, z_buf, mu, logvar, hs[T].clone(), cs[T if keep else T % 2].clone()

    @staticmethod
    def backward(ctx, *grads):
        with torch.autocast(ctx.saved_tensors[0].device.type, enabled=False):  # float32, as in forward
            dtype = ctx.saved_tensors[0].dtype
            return _FusedFilter._backward(ctx, *[g.to(dtype) if g is not None else None for g in grads])

    @staticmethod
    def _backward(ctx, g_hprev, g_pz, g_z, g_mu, g_logvar, g_hT, g_cT):
        n_post_hidden, n_phi_z, n_prior_hidden, H, P, L = ctx.sizes
        saved = ctx.saved_tensors
        hs, cs, s_buf, std_buf, z_buf, pz_buf, a_buf, tc_buf, eps, w_h, w_g = saved[:11]
        G = P + 4 * H
        resq = a_buf.shape[2] > G
        n_layers = 2 * (n_post_hidden + 1 + n_phi_z + ((n_prior_hidden + 1) if resq else 0))
        layers = saved[11 : 11 + n_layers]
        bufs = list(saved[11 + n_layers :])
        ph_bufs, bufs = bufs[:n_post_hidden], bufs[n_post_hidden:]
        pzh_bufs, prh_bufs = bufs[: n_phi_z - 1], bufs[n_phi_z - 1 :]
        r0_buf, act_buf, rp0_buf = a_buf[:, :, :P], a_buf[:, :, P:G], a_buf[:, :, G:]
        post_hidden, (w_q, b_q), phi_z, prior_hidden, prior_mu = _unflatten(layers, n_post_hidden, n_phi_z)
        T, B = z_buf.shape[:2]
        zeros = lambda *shape: hs.new_zeros(*shape)  # noqa: E731

        # Derivative factors of every step at once (none depends on the incoming gradient).
        i, f, o, g = act_buf.split(H, dim=2)
        k_c = torch.cat([g * i * (1 - i), cs[:T] * f * (1 - f), torch.zeros_like(o), i * (1 - g * g)], dim=2)
        k_h = tc_buf * o * (1 - o)  # d h / d (o's pre-activation), per unit of dh
        o_tc = o * (1 - tc_buf * tc_buf)  # d h / d c
        post_masks = [(r0_buf > 0).to(hs.dtype)] + [(b > 0).to(hs.dtype) for b in ph_bufs]
        phi_z_acts = pzh_bufs + [pz_buf]
        phi_z_masks = [(p > 0).to(hs.dtype) for p in phi_z_acts]
        prior_masks = [(rp0_buf > 0).to(hs.dtype)] + [(b > 0).to(hs.dtype) for b in prh_bufs] if resq else []
        sig = torch.sigmoid(s_buf[:, :, L:])  # softplus'(s_std)
        c_z = torch.cat([torch.ones_like(sig), eps * sig], dim=2)  # d [mu | s_std] / d z-gradient
        base = torch.cat([g_mu if g_mu is not None else zeros(T, B, L),
                          g_logvar * 2.0 * sig / std_buf if g_logvar is not None else zeros(T, B, L)], dim=2)

        d_a = hs.new_empty(T, B, a_buf.shape[2])  # gradient of a = x_proj_t + h @ W_h^T (pre-activations)
        d_s = hs.new_empty(T, B, 2 * L)
        d_ph = [hs.new_empty(T, B, P) for _ in post_hidden]
        d_pz = [hs.new_empty(T, B, P) for _ in phi_z]
        d_prh = [hs.new_empty(T, B, w.shape[0]) for w, _ in prior_hidden]
        dh = g_hT if g_hT is not None else zeros(B, H)  # never modified in place below
        dc = g_cT if g_cT is not None else zeros(B, H)
        f_steps, o_tc_steps, k_h_steps = f.unbind(0), o_tc.unbind(0), k_h.unbind(0)
        k_c_steps = k_c.view(T, B, 4, H).unbind(0)
        d_a_steps, d_post0_steps = d_a.unbind(0), d_a[:, :, :P].unbind(0)
        d_gates_steps = d_a[:, :, P:G].view(T, B, 4, H).unbind(0)
        d_o_steps, d_prior0_steps = d_a[:, :, P + 2 * H : P + 3 * H].unbind(0), d_a[:, :, G:].unbind(0)
        d_s_steps = d_s.view(T, B, 2, L).unbind(0)
        base_steps, c_z_steps = base.view(T, B, 2, L).unbind(0), c_z.view(T, B, 2, L).unbind(0)
        g_hprev_steps, g_pz_steps, g_z_steps = _steps(g_hprev, T), _steps(g_pz, T), _steps(g_z, T)
        phi_z_mask_steps = [m.unbind(0) for m in phi_z_masks]
        d_pz_steps = [d.unbind(0) for d in d_pz]
        post_mask_steps = [m.unbind(0) for m in post_masks]
        d_ph_steps = [d.unbind(0) for d in d_ph]
        prior_mask_steps = [m.unbind(0) for m in prior_masks]
        d_prh_steps = [d.unbind(0) for d in d_prh]
        for t in reversed(range(T)):
            dc = torch.addcmul(dc, dh, o_tc_steps[t])
            torch.mul(dc.unsqueeze(1), k_c_steps[t], out=d_gates_steps[t])  # its o block is overwritten next
            torch.mul(dh, k_h_steps[t], out=d_o_steps[t])
            dc = dc * f_steps[t]
            dp = _mm_plus(g_pz_steps[t], d_a_steps[t][:, P:G], w_g)
            for j in reversed(range(n_phi_z)):
                dv = torch.mul(dp, phi_z_mask_steps[j][t], out=d_pz_steps[j][t])
                dp = _mm_plus(g_z_steps[t] if j == 0 else None, dv, phi_z[j][0])
            ds = torch.addcmul(base_steps[t], dp.unsqueeze(1), c_z_steps[t], out=d_s_steps[t])
            dr = torch.mm(ds.view(B, 2 * L), w_q)
            for j in reversed(range(n_post_hidden)):
                du = torch.mul(dr, post_mask_steps[j + 1][t], out=d_ph_steps[j][t])
                dr = torch.mm(du, post_hidden[j][0])
            torch.mul(dr, post_mask_steps[0][t], out=d_post0_steps[t])
            if resq:  # mu = mu_p + delta: the mean's gradient also goes down the prior's layers
                dq = torch.mm(ds[:, 0], prior_mu[0])
                for j in reversed(range(n_prior_hidden)):
                    du = torch.mul(dq, prior_mask_steps[j + 1][t], out=d_prh_steps[j][t])
                    dq = torch.mm(du, prior_hidden[j][0])
                torch.mul(dq, prior_mask_steps[0][t], out=d_prior0_steps[t])
            dh = _mm_plus(g_hprev_steps[t], d_a_steps[t], w_h)

        # Weight gradients: one large matmul per weight over all T x B rows.
        rows = lambda x: x.reshape(T * B, x.shape[-1])  # noqa: E731
        grads = []
        post_inputs = [r0_buf] + ph_bufs
        for j in range(n_post_hidden):
            grads += [rows(d_ph[j]).t() @ rows(post_inputs[j]), rows(d_ph[j]).sum(0)]
        grads += [rows(d_s).t() @ rows(post_inputs[-1]), rows(d_s).sum(0)]
        phi_z_inputs = [z_buf] + pzh_bufs
        for j in range(n_phi_z):
            grads += [rows(d_pz[j]).t() @ rows(phi_z_inputs[j]), rows(d_pz[j]).sum(0)]
        if resq:
            prior_inputs = [rp0_buf] + prh_bufs
            for j in range(n_prior_hidden):
                grads += [rows(d_prh[j]).t() @ rows(prior_inputs[j]), rows(d_prh[j]).sum(0)]
            d_mu = rows(d_s[:, :, :L])
            grads += [d_mu.t() @ rows(prior_inputs[-1]), d_mu.sum(0)]
        d_w_h = rows(d_a).t() @ rows(hs[:T])
        d_w_g = rows(d_a[:, :, P:G]).t() @ rows(pz_buf)
        return (None, None, None, d_a, None, dh, dc, d_w_h, d_w_g, *grads)


def fused_filter(x_proj, eps, h0, c0, w_h, w_g, post_hidden, post_out, phi_z, prior=None):
    """Run the VRNN recurrence over time-major ``x_proj`` [T, B, P + 4H] = [qx | gx] and noise ``eps`` [T, B, L].

    ``post_hidden`` and ``phi_z`` are lists of ``nn.Linear`` (each followed by ReLU), ``post_out`` the Linear
    giving [mu | s_std]. ``prior`` (Resq: the posterior mean is a residual on the prior mean): ``(hidden, mean)``,
    the prior's Linear+ReLU layers after its first and the ``(weight, bias)`` giving its mean; then ``x_proj``
    is [qx | gx | px] and ``w_h`` holds the prior's first layer below the rest (see the module docstring).
    Returns time-major ``h_prev`` (h_{t-1}), ``pz``, ``z``, ``mu``, ``logvar`` and the final ``h``, ``c``.
    Computes in float32 (under autocast too: the cell state must not accumulate in bf16).
    """
    layers = []
    for lin in [*post_hidden, post_out, *phi_z]:
        layers += [lin.weight, lin.bias]
    if prior is not None:
        hidden, (w_mu, b_mu) = prior
        for lin in hidden:
            layers += [lin.weight, lin.bias]
        layers += [w_mu, b_mu]
    tensors = [x_proj, eps, h0, c0, w_h, w_g, *layers]
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    with torch.autocast(x_proj.device.type, enabled=False):
        tensors = [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors]
        return _FusedFilter.apply(keep, len(post_hidden), len(phi_z), *tensors)
