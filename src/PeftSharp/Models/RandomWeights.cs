using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>Seeded random weights in HF names for a config (benchmarks and tests).</summary>
internal static class RandomWeights
{
    /// <summary>One tensor's recipe: N(0, Std) when Std &gt; 0, else filled with Fill.</summary>
    public sealed record Spec(string Name, int[] Shape, float Std, float Fill = 0);

    /// <summary>Every weight of the config with its shape and init, in creation order.</summary>
    public static List<Spec> Specs(ModelConfig c)
    {
        var w = new List<Spec>();
        int C = c.HiddenSize, D = c.HeadDim, F = c.IntermediateSize, V = c.VocabSize;
        int qd = c.NumHeads * D, kvd = c.NumKvHeads * D;
        // Residual projections get std/√(2L) (GPT-2 style) so a deep random stack keeps activations O(1).
        float std = 0.02f, resStd = 0.02f / MathF.Sqrt(2f * Math.Max(1, c.NumLayers));
        void Mat(string name, int o, int i, float s) => w.Add(new Spec(name, [o, i], s));
        // Norms start as the identity: weight 1, or Gemma's stored 0 (its norm scales by 1 + w).
        float normFill = c.NormWeightOffset == 0 ? 1f : 0f;
        void Ones(string name, int n) => w.Add(new Spec(name, [n], 0, normFill));
        void Small(string name, int n) => w.Add(new Spec(name, [n], 0.01f));
        Mat(WeightNames.Embed, V, C, std);
        for (int l = 0; l < c.NumLayers; l++)
        {
            Ones(WeightNames.InputNorm(l), C);
            Ones(WeightNames.PostNorm(l), C);
            if (c.QkNorm) { Ones(WeightNames.QNorm(l), D); Ones(WeightNames.KNorm(l), D); }
            if (c.IsGemma) { Ones(WeightNames.PreFfnNorm(l), C); Ones(WeightNames.PostFfnNorm(l), C); }
            if (c.FusedProjections)
            {
                Mat(WeightNames.Attn(l, WeightNames.FusedQkv) + ".weight", qd + 2 * kvd, C, std);
                Mat(WeightNames.Attn(l, "o_proj") + ".weight", C, qd, resStd);
                Mat(WeightNames.Mlp(l, WeightNames.FusedGateUp) + ".weight", 2 * F, C, std);
                Mat(WeightNames.Mlp(l, "down_proj") + ".weight", C, F, resStd);
                continue; // phi3 has no biases
            }
            Mat(WeightNames.Attn(l, "q_proj") + ".weight", qd, C, std);
            Mat(WeightNames.Attn(l, "k_proj") + ".weight", kvd, C, std);
            Mat(WeightNames.Attn(l, "v_proj") + ".weight", kvd, C, std);
            Mat(WeightNames.Attn(l, "o_proj") + ".weight", C, qd, resStd);
            Mat(WeightNames.Mlp(l, "gate_proj") + ".weight", F, C, std);
            Mat(WeightNames.Mlp(l, "up_proj") + ".weight", F, C, std);
            Mat(WeightNames.Mlp(l, "down_proj") + ".weight", C, F, resStd);
            if (c.QkvBias)
                foreach (var (p, n) in new[] { ("q_proj", qd), ("k_proj", kvd), ("v_proj", kvd) })
                    Small(WeightNames.Attn(l, p) + ".bias", n);
            if (c.OutputBias) Small(WeightNames.Attn(l, "o_proj") + ".bias", C);
            if (c.MlpBias)
            {
                Small(WeightNames.Mlp(l, "gate_proj") + ".bias", F);
                Small(WeightNames.Mlp(l, "up_proj") + ".bias", F);
                Small(WeightNames.Mlp(l, "down_proj") + ".bias", C);
            }
        }
        Ones(WeightNames.FinalNorm, C);
        if (!c.TieWordEmbeddings) Mat(WeightNames.LmHead, V, C, std);
        return w;
    }

    public static Dictionary<string, Tensor> Create(ModelConfig c, DType dtype, ulong seed)
    {
        var rng = new Random(unchecked((int)seed ^ (int)(seed >> 32)));
        var w = new Dictionary<string, Tensor>();
        foreach (var s in Specs(c)) w[s.Name] = Make(s, rng, dtype);
        return w;
    }

    /// <summary>One tensor from its own seed (name-hashed), for building a model tensor by tensor.</summary>
    public static Tensor CreateOne(Spec s, DType dtype, ulong seed)
    {
        uint h = 2166136261;
        foreach (char ch in s.Name) h = (h ^ ch) * 16777619;
        return Make(s, new Random(unchecked((int)(seed ^ (seed >> 32)) ^ (int)h)), dtype);
    }

    static Tensor Make(Spec s, Random rng, DType dtype) =>
        s.Std > 0 ? Normal(rng, dtype, s.Std, s.Shape) : Fill(dtype, s.Fill, s.Shape[0]);

    static unsafe Tensor Normal(Random rng, DType dtype, float std, params int[] shape)
    {
        var t = new Tensor(dtype, shape);
        var buf = new float[Math.Min(t.ElementCount, 1 << 16)];
        for (long off = 0; off < t.ElementCount; off += buf.Length)
        {
            int len = (int)Math.Min(buf.Length, t.ElementCount - off);
            for (int i = 0; i < len; i++)
            {
                // Box–Muller
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                buf[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
            DTypeConvert.FromFloat(buf.AsSpan(0, len), dtype, t.Data + off * dtype.Size());
        }
        return t;
    }

    static unsafe Tensor Fill(DType dtype, float v, int n)
    {
        var t = new Tensor(dtype, n);
        var f = new float[n];
        Array.Fill(f, v);
        DTypeConvert.FromFloat(f, dtype, t.Data);
        return t;
    }
}
