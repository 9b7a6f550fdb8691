namespace PeftSharp.Kernels.Reference;

/// <summary>
/// Naive float64 causal GQA attention with the full T×T softmax per head, the yardstick for <see cref="Attention"/>.
/// Shapes as the kernel: q (B·T,Hq,D), k/v (B·T,Hkv,D), seg (B·T) or null; window > 0 limits i − j &lt; window;
/// softcap > 0 replaces each scaled score s by softcap·tanh(s / softcap) (Gemma 2's eager attention).
/// </summary>
internal static class AttentionReference
{
    // Causal, same segment, and (window > 0) within the sliding window: i − j < window.
    static bool Visible(int[]? seg, int row, int i, int j, int window) =>
        j <= i && (window <= 0 || i - j < window) && (seg == null || seg[row + i] == seg[row + j]);

    /// <summary>P (T,T) of one (batch row, head): softmax over visible keys of scale·q·k, and lse per query.</summary>
    static (double[] P, double[] Lse) Probabilities(double[] q, double[] k, int[]? seg, int b, int h, int T, int hq, int hkv, int d, int window, double softcap)
    {
        int g = h / (hq / hkv), row = b * T;
        double scale = 1 / Math.Sqrt(d);
        var p = new double[T * T];
        var lse = new double[T];
        for (int i = 0; i < T; i++)
        {
            double mx = double.NegativeInfinity;
            for (int j = 0; j < T; j++)
            {
                if (!Visible(seg, row, i, j, window)) continue;
                double s = 0;
                for (int x = 0; x < d; x++) s += q[((row + i) * hq + h) * d + x] * k[((row + j) * hkv + g) * d + x];
                s *= scale;
                if (softcap > 0) s = softcap * Math.Tanh(s / softcap);
                p[i * T + j] = s;
                mx = Math.Max(mx, s);
            }
            double sum = 0;
            for (int j = 0; j < T; j++) if (Visible(seg, row, i, j, window)) sum += Math.Exp(p[i * T + j] - mx);
            lse[i] = mx + Math.Log(sum);
            for (int j = 0; j < T; j++) p[i * T + j] = Visible(seg, row, i, j, window) ? Math.Exp(p[i * T + j] - lse[i]) : 0;
        }
        return (p, lse);
    }

    // out (N,Hq,D) = P·V per head; lse (N,Hq)
    public static (double[] Out, double[] Lse) Forward(double[] q, double[] k, double[] v, int[]? seg, int batch, int T, int hq, int hkv, int d, int window = 0,
        double softcap = 0)
    {
        var o = new double[batch * T * hq * d];
        var lse = new double[batch * T * hq];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < hq; h++)
            {
                var (p, l) = Probabilities(q, k, seg, b, h, T, hq, hkv, d, window, softcap);
                int g = h / (hq / hkv), row = b * T;
                for (int i = 0; i < T; i++)
                {
                    lse[(row + i) * hq + h] = l[i];
                    for (int j = 0; j < T; j++)
                        for (int x = 0; x < d; x++)
                            o[((row + i) * hq + h) * d + x] += p[i * T + j] * v[((row + j) * hkv + g) * d + x];
                }
            }
        return (o, lse);
    }

    // With S = scale·QKᵀ, P = softmax(S): dV = Pᵀ dO, dP = dO Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS K, dK = scale·dSᵀ Q.
    // Soft-capped (S' = c·tanh(S/c), P = softmax(S')): dS is multiplied by dS'/dS = 1 − tanh²(S/c) = 1 − (S'/c)².
    public static (double[] Dq, double[] Dk, double[] Dv) Backward(double[] dout, double[] q, double[] k, double[] v, int[]? seg,
        int batch, int T, int hq, int hkv, int d, int window = 0, double softcap = 0)
    {
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        double scale = 1 / Math.Sqrt(d);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < hq; h++)
            {
                var (p, _) = Probabilities(q, k, seg, b, h, T, hq, hkv, d, window, softcap);
                int g = h / (hq / hkv), row = b * T;
                int Qi(int i, int x) => ((row + i) * hq + h) * d + x;
                int Kj(int j, int x) => ((row + j) * hkv + g) * d + x;
                for (int i = 0; i < T; i++)
                {
                    var dP = new double[T];
                    double rowDot = 0;
                    for (int j = 0; j < T; j++)
                    {
                        for (int x = 0; x < d; x++) dP[j] += dout[Qi(i, x)] * v[Kj(j, x)];
                        rowDot += p[i * T + j] * dP[j];
                    }
                    for (int j = 0; j < T; j++)
                    {
                        double pij = p[i * T + j];
                        if (pij == 0) continue;
                        double dS = pij * (dP[j] - rowDot);
                        if (softcap > 0)
                        {
                            double raw = 0;
                            for (int x = 0; x < d; x++) raw += q[Qi(i, x)] * k[Kj(j, x)];
                            double t = Math.Tanh(raw * scale / softcap);
                            dS *= 1 - t * t;
                        }
                        for (int x = 0; x < d; x++)
                        {
                            dv[Kj(j, x)] += pij * dout[Qi(i, x)];
                            dq[Qi(i, x)] += scale * dS * k[Kj(j, x)];
                            dk[Kj(j, x)] += scale * dS * q[Qi(i, x)];
                        }
                    }
                }
            }
        return (dq, dk, dv);
    }
}
