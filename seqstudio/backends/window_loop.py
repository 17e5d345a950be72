"""The text window layer's step loop (``TextWindowLayer``: LSTM cell + Graves' Gaussian window) as one autograd
node with a hand-written backward through time, the way ``vrnn_loop.py`` does the VRNN's.

Why this exists: ``w_{t-1}`` feeds the step t, so this layer runs step by step, and with ordinary autograd every
one of its ~20 small ops per step is taped; at hidden 64, batch 32 on one CPU thread the taping, the per-step
weight-gradient matmuls and the backward's bookkeeping cost more than the arithmetic (a training step of the
rnn backend took about twice as long with the text as without it). Here the forward runs untaped into
preallocated time-major buffers; the backward walks the steps in reverse with only the activation gradients the
recurrence needs, and forms each weight's gradient after the loop as one matmul over all T x B rows. Every
derivative factor that does not depend on the incoming gradient (the LSTM gates', the window's
``d phi / d (alpha_hat, beta_hat, kappa)``) is computed for all steps at once before the reverse loop. Nothing
reads a value back to the host.

The step (``gx_t``: the x-dependent part of the gates with their bias, computed over the whole sequence by the
caller; ``W = [W_w | W_h]`` the layer's ``from_wh``; u = 0..U-1 the symbol positions):

    gates    = gx_t + w_{t-1} @ W_w^T + h_{t-1} @ W_h^T     -> i, f, o = sigmoid, g = tanh
    c_t      = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
    [alpha | beta | r] = exp(h_t @ W_p^T + b_p)               (K each)
    kappa_t  = kappa_{t-1} + scale * r
    e_{ku}   = exp(-beta_k (kappa_k - u)^2),   phi_u = mask_u sum_k alpha_k e_{ku}
    w_t      = sum_u phi_u onehot_u

and the layer's output is ``ctx_t = [h_t, w_t]``. ``AttentionWindow.step`` also returns the weight one past the
last symbol (the stopping rule reads it in generation); training never uses it, so it is not computed here.
The plain loop (``TextWindowLayer`` with ``fused = False``, and always with ``trace=True`` and in generation's
single steps) is the reference this one is tested against (tests/test_window_loop.py).
"""

from __future__ import annotations

import torch


class _FusedWindow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keep, scale, gx, ids, mask, onehot, h0, c0, kappa0, w0, w_wh, w_p, b_p):
        T, B = gx.shape[:2]
        H, S, K, U = h0.shape[1], w0.shape[1], kappa0.shape[1], ids.shape[1]
        new = gx.new_empty
        n = T if keep else 1  # per-step scratch kept for backward, or reused when nothing needs it
        hs, ws = new(T + 1, B, H), new(T + 1, B, S)  # [t] = h_{t-1}, w_{t-1}; [0]: the initial state
        kap = new(T + 1, B, K)
        cs = new(T + 1 if keep else 2, B, H)
        act, tc = new(n, B, 4 * H), new(n, B, H)  # gate activations, tanh(c_t)
        ep = new(T, B, 3 * K)  # exp of the window parameters: alpha, beta, r
        dist, e = new(n, B, K, U), new(n, B, K, U)
        ws[0].copy_(w0)
        hs[0].copy_(h0)
        cs[0].copy_(c0)
        kap[0].copy_(kappa0)
        w_w_t, w_h_t, w_p_t = w_wh[:, :S].t(), w_wh[:, S:].t(), w_p.t()
        positions = torch.arange(U, dtype=gx.dtype, device=gx.device)
        maskf = mask.to(gx.dtype)
        masked = onehot * maskf.unsqueeze(-1)  # w_t = phi_raw @ (mask * onehot): padding gets no weight
        gx_steps, act_steps, tc_steps, ep_steps = gx.unbind(0), act.unbind(0), tc.unbind(0), ep.unbind(0)
        cs_steps, kap_steps = cs.unbind(0), kap.unbind(0)
        h_steps, w_steps, w3_steps = hs.unbind(0), ws.unbind(0), ws.unsqueeze(2).unbind(0)  # w3: [B, 1, S]
        ifo_steps, g_steps = act[:, :, : 3 * H].unbind(0), act[:, :, 3 * H :].unbind(0)
        dist_steps, e_steps = dist.unbind(0), e.unbind(0)
        for t in range(T):
            k = t if keep else 0
            c_in, c_out = (t, t + 1) if keep else (t % 2, (t + 1) % 2)
            torch.addmm(gx_steps[t], h_steps[t], w_h_t, out=act_steps[k]).addmm_(w_steps[t], w_w_t)
            ifo_steps[k].sigmoid_()
            g = g_steps[k].tanh_()
            i, f, o = ifo_steps[k].chunk(3, dim=1)
            c = torch.mul(f, cs_steps[c_in], out=cs_steps[c_out]).addcmul_(i, g)
            h = torch.mul(o, torch.tanh(c, out=tc_steps[k]), out=h_steps[t + 1])
            p = torch.addmm(b_p, h, w_p_t, out=ep_steps[t]).exp_()
            alpha, beta, r = p.split(K, dim=1)
            kappa = torch.add(kap_steps[t], r, alpha=scale, out=kap_steps[t + 1])
            d = torch.sub(kappa.unsqueeze(-1), positions, out=dist_steps[k])  # [B, K, U]
            ek = torch.mul(d, d, out=e_steps[k]).mul_(beta.unsqueeze(-1)).neg_().exp_()
            torch.bmm(torch.bmm(alpha.unsqueeze(1), ek), masked, out=w3_steps[t + 1])
        if keep:
            ctx.save_for_backward(ids, maskf, hs, ws, cs, act, tc, ep, dist, e, w_wh, w_p)
            ctx.scale = scale
        out = torch.cat([hs[1:], ws[1:]], dim=2)  # [T, B, H + S] = [h_t | w_t]
        return out, hs[T].clone(), cs[T if keep else T % 2].clone(), kap[T].clone(), ws[T].clone()

    @staticmethod
    def backward(ctx, g_out, g_hT, g_cT, g_kT, g_wT):
        with torch.autocast(ctx.saved_tensors[1].device.type, enabled=False):  # the forward's dtype
            dtype = ctx.saved_tensors[1].dtype
            grads = [g.to(dtype) if g is not None else None for g in (g_out, g_hT, g_cT, g_kT, g_wT)]
            return (None, None, *_FusedWindow._backward(ctx, *grads))

    @staticmethod
    def _backward(ctx, g_out, g_hT, g_cT, g_kT, g_wT):
        ids, maskf, hs, ws, cs, act, tc, ep, dist, e, w_wh, w_p = ctx.saved_tensors
        scale = ctx.scale
        T, B, H = act.shape[0], act.shape[1], act.shape[2] // 4
        S, K = ws.shape[2], ep.shape[2] // 3
        zeros = hs.new_zeros

        # Derivative factors of every step at once (none depends on the incoming gradient).
        i, f, o, g = act.split(H, dim=2)
        k_c = torch.cat([g * i * (1 - i), cs[:T] * f * (1 - f), torch.zeros_like(o), i * (1 - g * g)], dim=2)
        k_h = tc * o * (1 - o)  # d h / d (o's pre-activation)
        o_tc = o * (1 - tc * tc)  # d h / d c
        alpha, beta, r = ep.split(K, dim=2)
        ae = alpha.unsqueeze(-1) * e * maskf[None, :, None, :]  # [T, B, K, U]: d phi / d alpha_hat per unit
        bd = beta.unsqueeze(-1) * dist
        # rows: d / d alpha_hat, d / d beta_hat, d / d kappa_t (given d phi, summed over u by one bmm per step)
        m = torch.cat([ae, -bd * dist * ae, -2.0 * bd * ae], dim=2)
        r_scaled = r * scale  # d kappa_t / d kappa_hat
        # the incoming gradient of each step's [w_t | h_t] (from_wh's input layout), plus the final state's
        g_inp = (torch.cat([g_out[:, :, H:], g_out[:, :, :H]], dim=2) if g_out is not None
                 else zeros(T, B, S + H))
        if g_wT is not None or g_hT is not None:
            g_inp[T - 1] += torch.cat([g_wT if g_wT is not None else zeros(B, S),
                                       g_hT if g_hT is not None else zeros(B, H)], dim=1)

        d_gates = hs.new_empty(T, B, 4 * H)
        d_p = hs.new_empty(T, B, 3 * K, 1)
        dc = g_cT if g_cT is not None else zeros(B, H)
        dkappa = g_kT if g_kT is not None else zeros(B, K)
        f_steps, o_tc_steps, k_h_steps = f.unbind(0), o_tc.unbind(0), k_h.unbind(0)
        k_c_steps = k_c.view(T, B, 4, H).unbind(0)
        m_steps, r_steps, g_inp_steps = m.unbind(0), r_scaled.unbind(0), g_inp.unbind(0)
        d_gates_steps, d_p_steps = d_gates.unbind(0), d_p.unbind(0)
        d_p_flat = d_p.view(T, B, 3 * K).unbind(0)
        d_gates4_steps = d_gates.view(T, B, 4, H).unbind(0)
        d_o_steps = d_gates[:, :, 2 * H : 3 * H].unbind(0)
        d_r_steps = d_p[:, :, 2 * K :, 0].unbind(0)
        d_inp = g_inp_steps[T - 1]
        for t in reversed(range(T)):
            dphi = torch.gather(d_inp[:, :S], 1, ids)  # [B, U]: d w / d phi_u is onehot_u (mask: in m)
            torch.bmm(m_steps[t], dphi.unsqueeze(-1), out=d_p_steps[t])  # [B, 3K, 1]
            dkappa = dkappa + d_r_steps[t]
            torch.mul(dkappa, r_steps[t], out=d_r_steps[t])
            dh = torch.addmm(d_inp[:, S:], d_p_flat[t], w_p)
            dc = torch.addcmul(dc, dh, o_tc_steps[t])
            torch.mul(dc.unsqueeze(1), k_c_steps[t], out=d_gates4_steps[t])  # its o block is overwritten next
            torch.mul(dh, k_h_steps[t], out=d_o_steps[t])
            dc = dc * f_steps[t]
            d_inp = (torch.addmm(g_inp_steps[t - 1], d_gates_steps[t], w_wh) if t > 0
                     else torch.mm(d_gates_steps[t], w_wh))

        rows = lambda x: x.reshape(T * B, x.shape[-1])  # noqa: E731
        dp_rows = d_p.view(T * B, 3 * K)
        dg = rows(d_gates)
        d_w_wh = torch.cat([dg.t() @ rows(ws[:T]), dg.t() @ rows(hs[:T])], dim=1)
        d_w_p = dp_rows.t() @ rows(hs[1:])
        d_b_p = dp_rows.sum(0)
        # gx, ids, mask, onehot, h0, c0, kappa0, w0, w_wh, w_p, b_p
        return (d_gates, None, None, None, d_inp[:, S:], dc, dkappa, d_inp[:, :S], d_w_wh, d_w_p, d_b_p)


def fused_window(gx, ids, mask, onehot, state, w_wh, w_p, b_p, scale: float = 1.0):
    """Run ``TextWindowLayer``'s recurrence over time-major ``gx`` [T, B, 4H] (``from_x`` of the inputs, bias
    included). ``ids`` [B, U] symbol ids clamped into the vocabulary, ``mask`` [B, U] (1 on real symbols),
    ``onehot`` [B, U, S]; ``state`` = (h, c, kappa, w) before the first step; ``w_wh`` the ``from_wh`` weight
    (its input is ``[w | h]``), ``w_p``/``b_p`` the window's ``params`` Linear. Returns time-major ``ctx``
    [T, B, H + S] = ``[h_t, w_t]`` and the final ``(h, c, kappa, w)``. Computes in float32 under autocast too
    (as the VRNN's loop: the cell state and the window positions must not accumulate in bf16)."""
    h0, c0, kappa0, w0 = state
    tensors = [gx, h0, c0, kappa0, w0, w_wh, w_p, b_p]
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    with torch.autocast(gx.device.type, enabled=False):
        dtype = torch.float32 if gx.dtype in (torch.float16, torch.bfloat16) else gx.dtype
        gx, h0, c0, kappa0, w0, w_wh, w_p, b_p = [t.to(dtype) for t in tensors]
        out, h, c, kappa, w = _FusedWindow.apply(keep, float(scale), gx, ids, mask, onehot.to(dtype).contiguous(),
                                                 h0, c0, kappa0, w0, w_wh, w_p, b_p)
    return out, (h, c, kappa, w)
