using PeftSharp.Peft;

namespace PeftSharp.Tests.TestSupport;

/// <summary>Finite-difference check of a model's backward along one random direction of its trainable parameters.</summary>
internal static class DirectionalDerivative
{
    /// <summary>Returns the analytic directional derivative of the summed loss (gradients · d, d seeded random over the
    /// parameters <paramref name="along"/> selects, all when null) and gives the central difference with step 1e-3 in
    /// <paramref name="numeric"/>. Parameters are restored afterwards.</summary>
    public static double Check(PeftModel pm, int B, int T, int[] ids, int[] pos, int[] seg, int[] tgt, out double numeric,
        Func<string, bool>? along = null)
    {
        using (var pass = Passes.Model(pm, B, T, recompute: false))
            pass.ForwardBackward(ids, pos, seg, tgt, 1f);
        var rng = new Random(6);
        var parameters = pm.TrainableParameters().ToList();
        var dirs = parameters.Select(p => along == null || along(p.Name) ? Numerics.RandomFloats(rng, (int)p.Count) : new float[p.Count]).ToList();
        double analytic = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            var g = parameters[i].Grad.Floats;
            for (int j = 0; j < g.Length; j++) analytic += g[j] * dirs[i][j];
        }
        double Loss()
        {
            using var pass = Passes.Model(pm, B, T, recompute: false);
            return pass.Loss(ids, pos, seg, tgt).LossSum;
        }
        const float eps = 1e-3f;
        void Shift(float s)
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                var v = parameters[i].Value.Floats;
                for (int j = 0; j < v.Length; j++) v[j] += s * dirs[i][j];
            }
        }
        Shift(eps); double plus = Loss();
        Shift(-2 * eps); double minus = Loss();
        Shift(eps);
        numeric = (plus - minus) / (2 * eps);
        return analytic;
    }

    /// <summary>Sets every lora_B to seeded values in ±0.1, so that B·A ≠ 0 and A's gradient is not zero.</summary>
    public static void RandomizeB(PeftModel pm, int seed = 4)
    {
        var rng = new Random(seed);
        foreach (var p in pm.TrainableParameters().Where(p => p.Name.Contains("lora_B")))
        {
            var v = p.Value.Floats;
            for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
        }
    }

    /// <summary>A packed batch: each of <paramref name="batch"/> rows of <paramref name="seq"/> tokens holds two sequences
    /// (positions restart at token 4; the last token of each sequence has no target).</summary>
    public static (int[] Ids, int[] Pos, int[] Seg, int[] Tgt) PackedPairs(int vocab, int batch, int seq)
    {
        var ids = TinyModels.RandomIds(new Random(8), batch * seq, vocab);
        var pos = new int[batch * seq]; var seg = new int[batch * seq]; var tgt = new int[batch * seq];
        for (int i = 0; i < batch * seq; i++)
        {
            int t = i % seq; bool second = t >= 4;
            pos[i] = second ? t - 4 : t; seg[i] = second ? 1 : 0;
            tgt[i] = t == seq - 1 || t == 3 ? -100 : ids[i + 1];
        }
        return (ids, pos, seg, tgt);
    }
}
