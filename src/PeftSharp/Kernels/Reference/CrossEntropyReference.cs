namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 LM head + softmax cross-entropy with full (n, V) logits, the yardstick for <see cref="CrossEntropy"/>.</summary>
internal static class CrossEntropyReference
{
    // hidden (n,c), w (V,c), targets (n) with −100 ignored. Loss = Σ_i (lse_i − logit_i[t_i]);
    // dlogits = gradScale·(softmax − onehot); dh = dlogits·W; dW = dlogitsᵀ·h.
    public static (double LossSum, int Count, double[] Dh, double[] Dw) ForwardBackward(double[] h, double[] w, int[] targets,
        int n, int c, int vocab, double gradScale, double softcap = 0)
    {
        double loss = 0; int count = 0;
        var dh = new double[n * c]; var dw = new double[vocab * c];
        var logits = new double[vocab];
        for (int i = 0; i < n; i++)
        {
            if (targets[i] == -100) continue;
            count++;
            double mx = double.NegativeInfinity;
            for (int v = 0; v < vocab; v++)
            {
                double s = 0;
                for (int x = 0; x < c; x++) s += h[i * c + x] * w[v * c + x];
                if (softcap > 0) s = softcap * Math.Tanh(s / softcap);   // Gemma 2's final_logit_softcapping
                logits[v] = s;
                mx = Math.Max(mx, s);
            }
            double sum = 0;
            for (int v = 0; v < vocab; v++) sum += Math.Exp(logits[v] - mx);
            double lse = mx + Math.Log(sum);
            loss += lse - logits[targets[i]];
            for (int v = 0; v < vocab; v++)
            {
                double dl = gradScale * (Math.Exp(logits[v] - lse) - (v == targets[i] ? 1 : 0));
                if (softcap > 0) dl *= 1 - logits[v] / softcap * (logits[v] / softcap);
                for (int x = 0; x < c; x++)
                {
                    dh[i * c + x] += dl * w[v * c + x];
                    dw[v * c + x] += dl * h[i * c + x];
                }
            }
        }
        return (loss, count, dh, dw);
    }
}
