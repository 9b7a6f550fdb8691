using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Quantization;

namespace PeftSharp.Peft;

/// <summary>LoftQ's outcome on one targeted module, for reports and benchmarks.</summary>
/// <param name="Module">The projection's name.</param>
/// <param name="OutFeatures">Rows of W.</param>
/// <param name="InFeatures">Columns of W.</param>
/// <param name="PlainError">‖W − NF4(W)‖ / ‖W‖ (plain QLoRA).</param>
/// <param name="Errors">‖W − (Q + s·B·A)‖ / ‖W‖ after each LoftQ step.</param>
/// <param name="WeightNorm">‖W‖, to combine modules into a total.</param>
internal sealed record LoftQModuleReport(string Module, int OutFeatures, int InFeatures, double PlainError, double[] Errors, double WeightNorm)
{
    /// <summary>The total relative error over modules: √(Σ (eᵢ·‖Wᵢ‖)²) / √(Σ ‖Wᵢ‖²), per step (and for plain NF4).</summary>
    public static (double Plain, double[] Steps) Total(IReadOnlyList<LoftQModuleReport> modules)
    {
        double w2 = modules.Sum(m => m.WeightNorm * m.WeightNorm);
        double Combine(Func<LoftQModuleReport, double> err) => Math.Sqrt(modules.Sum(m => Math.Pow(err(m) * m.WeightNorm, 2)) / w2);
        int steps = modules.Count == 0 ? 0 : modules.Min(m => m.Errors.Length);
        return (Combine(m => m.PlainError), Enumerable.Range(0, steps).Select(k => Combine(m => m.Errors[k])).ToArray());
    }
}

/// <summary>
/// init_lora_weights "loftq" on a model (PEFT layer.py loftq_init): every targeted dense projection gets LoftQ's
/// quantized base and its adapter the fitted A, B. With a 4-bit format the base becomes a <see cref="QuantizedLinear"/>
/// holding exactly that Q (a QLoRA/QDoRA run); without one it is PEFT's own path, where the base keeps its dtype and
/// holds dequant(Q) (PEFT's loftq_init returns the dequantized weight and the model is quantized again when reloaded
/// in 4 bits, which reproduces Q's codes), computed with PEFT's NF4 format (blocksize 64, no double quantization).
/// </summary>
internal static class LoftQInit
{
    /// <summary>The factors for each targeted module, by name, and what LoftQ measured.</summary>
    internal sealed record Prepared(Dictionary<string, (float[] A, float[] B)> Factors, List<LoftQModuleReport> Reports);

    /// <summary>Refuses what LoftQ cannot do, before any weight is changed.</summary>
    public static void Check(ILinear proj, int rank)
    {
        if (proj is LoraLinear)
            throw new PeftException($"{proj.Name}: init_lora_weights \"loftq\" replaces the base weight, but this module already carries an adapter; " +
                "add the LoftQ adapter first, to a fresh model");
        if (proj is not Linear lin)
            throw new PeftException($"{proj.Name}: init_lora_weights \"loftq\" quantizes the dense base weight itself, but this module is " +
                $"{proj.GetType().Name} (already 4-bit); load the model unquantized (with qlora/qdora the run quantizes it through LoftQ)");
        if (lin.Trainable) throw new PeftException($"{proj.Name}: LoftQ needs a frozen base, but the weight is trainable (full fine-tuning)");
        if (rank > Math.Min(lin.OutFeatures, lin.InFeatures))
            throw new PeftException($"{proj.Name}: LoftQ rank {rank} exceeds min(out, in) = {Math.Min(lin.OutFeatures, lin.InFeatures)}");
    }

    /// <summary>
    /// Runs LoftQ on every targeted projection of <paramref name="model"/> and swaps in the new base
    /// (<paramref name="fourBit"/>: 4-bit in that format; null: dense, holding dequant(Q)). All targets are checked first.
    /// </summary>
    public static Prepared Apply(ComputeContext ctx, CausalLM model, TargetMatcher matcher, LoraConfig config, QuantizeOptions? fourBit,
        Action<string>? progress = null)
    {
        var cfg = config.LoftqConfig ?? throw new PeftException("init_lora_weights \"loftq\" needs loftq_config");
        if (fourBit is { Type: not Quant4Type.NF4 })
            throw new PeftException($"init_lora_weights \"loftq\": the 4-bit base must be nf4 (LoftQ's and PEFT's quantizer), not {fourBit.Type.BnbName()}");
        var targets = model.Layers.SelectMany(l => l.Projections.Select(p => (Layer: l, Proj: p))).Where(x => matcher.IsTarget(x.Proj.Name)).ToList();
        foreach (var (_, p) in targets) Check(p, matcher.RankFor(p.Name));
        var prepared = new Prepared(new Dictionary<string, (float[], float[])>(), new List<LoftQModuleReport>());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int done = 0, every = Math.Max(1, (targets.Count + 9) / 10);   // about ten lines
        foreach (var (layer, p) in targets)
        {
            var lin = (Linear)p;
            int rank = matcher.RankFor(p.Name);
            float scaling = LoraAdapter.ScalingFor(matcher.AlphaFor(p.Name), rank, config.UseRsLora);
            var w = new float[lin.OutFeatures * lin.InFeatures];
            lin.ReadRows(ctx, 0, lin.OutFeatures, w);
            var r = LoftQ.Run(ctx, w, lin.OutFeatures, lin.InFeatures, rank, scaling, cfg.LoftqIter, fourBit ?? LoftQ.PeftFormat, p.Name + ".weight");
            if (fourBit != null)
            {
                var q = new QuantizedLinear(p.Name, r.Q, lin.Bias);
                layer.Replace(p.Name, _ => q);
                lin.Dispose();
            }
            else
            {
                // PEFT's path: the base keeps its dtype and holds dequant(Q), rounded to that dtype.
                var deq = new float[w.Length];
                r.Q.Dequantize(ctx, deq);
                r.Q.Dispose();
                System.Numerics.Tensors.TensorPrimitives.Subtract(deq, w, deq);
                lin.AddToWeight(ctx, deq, 1f);
            }
            prepared.Factors[p.Name] = (r.A, r.B);
            prepared.Reports.Add(new LoftQModuleReport(p.Name, lin.OutFeatures, lin.InFeatures, r.PlainError, r.Errors, r.WeightNorm));
            if (++done % every == 0 || done == targets.Count)
                progress?.Invoke(FormattableString.Invariant(
                    $"LoftQ {done}/{targets.Count} modules ({clock.Elapsed.TotalSeconds:0} s): {p.Name} ‖W − (Q + s·B·A)‖/‖W‖ {r.PlainError:0.0000} → {r.Errors[^1]:0.0000}"));
        }
        return prepared;
    }

    /// <summary>Copies a module's fitted factors into its adapter.</summary>
    public static void SetFactors(LoraAdapter ad, (float[] A, float[] B) f)
    {
        f.A.CopyTo(ad.A.Value.Floats);
        f.B.CopyTo(ad.B.Value.Floats);
    }
}
