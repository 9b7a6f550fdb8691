using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.Gemma;

/// <summary>
/// Gemma2ForCausalLM / Gemma3ForCausalLM's forward in float64, written from transformers' modeling_gemma2.py and
/// modeling_gemma3.py (eager attention, no dropout), sharing no code with the engine or its kernel references:
/// embeddings × √hidden; per layer: n = norm(x)·(1 + w); q, k, v projections; gemma3: per-head q/k norms; RoPE
/// (rotate_half; gemma3 local layers with rope_local_base_freq and no scaling, global layers rope_theta with the
/// linear scaling); scores q·k · query_pre_attn_scalar^-½, soft-capped c·tanh(s/c) when configured, then the causal and
/// sliding-window mask (a local layer's query i sees key j iff 0 ≤ i − j &lt; sliding_window), softmax, ·V, o_proj;
/// x += post_attention_norm(attn); x += post_feedforward_norm(down(gelu_tanh(gate(m))·up(m))), m = pre_feedforward_norm(x);
/// final norm, tied head, final soft cap.
/// </summary>
internal static class GemmaReference
{
    static double[] D(Tensor t)
    {
        var d = new double[t.ElementCount];
        var f = t.Floats;
        for (int i = 0; i < d.Length; i++) d[i] = f[i];
        return d;
    }

    static double[] Linear(double[] x, double[] w, int rows, int outF, int inF)
    {
        var y = new double[rows * outF];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = 0;
                for (int i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
                y[r * outF + o] = s;
            }
        return y;
    }

    /// <summary>Gemma's RMSNorm over rows of width c: x / √(mean(x²) + eps) · (1 + w).</summary>
    static double[] GemmaNorm(double[] x, double[] w, int c, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / c; r++)
        {
            double ss = 0;
            for (int j = 0; j < c; j++) ss += x[r * c + j] * x[r * c + j];
            double inv = 1 / Math.Sqrt(ss / c + eps);
            for (int j = 0; j < c; j++) y[r * c + j] = x[r * c + j] * inv * (1 + w[j]);
        }
        return y;
    }

    /// <summary>apply_rotary_pos_emb with rotate_half: x·cos + rotate_half(x)·sin, cos/sin over cat(freqs, freqs).</summary>
    static void Rope(double[] x, int T, int heads, int d, double theta, double linearFactor)
    {
        int half = d / 2;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++)
            {
                int o = (t * heads + h) * d;
                for (int i = 0; i < half; i++)
                {
                    double invFreq = 1 / Math.Pow(theta, 2.0 * i / d) / linearFactor;
                    double a = t * invFreq, cos = Math.Cos(a), sin = Math.Sin(a);
                    double x1 = x[o + i], x2 = x[o + half + i];
                    x[o + i] = x1 * cos - x2 * sin;
                    x[o + half + i] = x2 * cos + x1 * sin;
                }
            }
    }

    static double GeluTanh(double g) => 0.5 * g * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));

    /// <summary>Logits (T, V) of one sequence at positions 0 … T−1.</summary>
    public static double[] Logits(ModelConfig c, Dictionary<string, Tensor> w, int[] ids)
    {
        bool g3 = c.ModelType == "gemma3_text";
        int T = ids.Length, C = c.HiddenSize, Dh = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads, F = c.IntermediateSize, V = c.VocabSize;
        int qd = hq * Dh, kvd = hkv * Dh;
        double eps = c.RmsNormEps;
        double[] W(string name) => D(w[name]);
        double[] Proj(double[] x, string module, int outF, int inF)
        {
            var y = Linear(x, W(module + ".weight"), T, outF, inF);
            if (w.TryGetValue(module + ".bias", out var b))
                for (int r = 0; r < T; r++) for (int o = 0; o < outF; o++) y[r * outF + o] += b.Floats[o];
            return y;
        }

        var emb = W(WeightNames.Embed);
        double normalizer = Math.Sqrt(C);
        var h = new double[T * C];
        for (int t = 0; t < T; t++)
            for (int j = 0; j < C; j++) h[t * C + j] = emb[ids[t] * C + j] * normalizer;

        for (int l = 0; l < c.NumLayers; l++)
        {
            // Gemma2: `sliding_window if not bool(layer_idx % 2)`; Gemma3: `bool((layer_idx + 1) % sliding_window_pattern)`
            bool local = g3 ? (l + 1) % c.SlidingWindowPattern != 0 : l % 2 == 0;
            int window = local && c.SlidingWindow is int sw ? sw : int.MaxValue;
            var xn = GemmaNorm(h, W(WeightNames.InputNorm(l)), C, eps);
            var q = Proj(xn, WeightNames.Attn(l, "q_proj"), qd, C);
            var k = Proj(xn, WeightNames.Attn(l, "k_proj"), kvd, C);
            var v = Proj(xn, WeightNames.Attn(l, "v_proj"), kvd, C);
            if (g3)
            {
                q = GemmaNorm(q, W(WeightNames.QNorm(l)), Dh, eps);
                k = GemmaNorm(k, W(WeightNames.KNorm(l)), Dh, eps);
            }
            double theta = g3 && local ? c.RopeLocalTheta!.Value : c.RopeTheta;
            double factor = !(g3 && local) && c.RopeScaling is { Type: "linear" } rs ? rs.Factor : 1;
            Rope(q, T, hq, Dh, theta, factor);
            Rope(k, T, hkv, Dh, theta, factor);

            double scaling = Math.Pow(c.QueryPreAttnScalar!.Value, -0.5);
            var attn = new double[T * qd];
            var s = new double[T];
            for (int head = 0; head < hq; head++)
            {
                int g = head / (hq / hkv);
                for (int i = 0; i < T; i++)
                {
                    double mx = double.NegativeInfinity;
                    for (int j = 0; j < T; j++)
                    {
                        s[j] = double.NegativeInfinity;
                        if (j > i || i - j >= window) continue;
                        double dot = 0;
                        for (int x = 0; x < Dh; x++) dot += q[(i * hq + head) * Dh + x] * k[(j * hkv + g) * Dh + x];
                        dot *= scaling;
                        if (c.AttnLogitSoftcapping is double cap) dot = Math.Tanh(dot / cap) * cap;
                        s[j] = dot;
                        mx = Math.Max(mx, dot);
                    }
                    double sum = 0;
                    for (int j = 0; j < T; j++) sum += Math.Exp(s[j] - mx);
                    for (int j = 0; j < T; j++)
                    {
                        double p = Math.Exp(s[j] - mx) / sum;
                        for (int x = 0; x < Dh; x++) attn[(i * hq + head) * Dh + x] += p * v[(j * hkv + g) * Dh + x];
                    }
                }
            }
            var o = Proj(attn, WeightNames.Attn(l, "o_proj"), C, qd);
            o = GemmaNorm(o, W(WeightNames.PostNorm(l)), C, eps);
            for (int i = 0; i < h.Length; i++) h[i] += o[i];

            var m = GemmaNorm(h, W(WeightNames.PreFfnNorm(l)), C, eps);
            var gate = Proj(m, WeightNames.Mlp(l, "gate_proj"), F, C);
            var up = Proj(m, WeightNames.Mlp(l, "up_proj"), F, C);
            var act = new double[T * F];
            for (int i = 0; i < act.Length; i++) act[i] = GeluTanh(gate[i]) * up[i];
            var down = Proj(act, WeightNames.Mlp(l, "down_proj"), C, F);
            down = GemmaNorm(down, W(WeightNames.PostFfnNorm(l)), C, eps);
            for (int i = 0; i < h.Length; i++) h[i] += down[i];
        }
        var hn = GemmaNorm(h, W(WeightNames.FinalNorm), C, eps);
        var logits = Linear(hn, c.TieWordEmbeddings ? emb : W(WeightNames.LmHead), T, V, C);
        if (c.FinalLogitSoftcapping is double fcap)
            for (int i = 0; i < logits.Length; i++) logits[i] = Math.Tanh(logits[i] / fcap) * fcap;
        return logits;
    }
}
