using PeftSharp.Models;

namespace PeftSharp.Planning;

/// <summary>What a short probe measured on this machine: the GEMM rate and the NF4 dequantization rate.</summary>
/// <param name="GemmFlopsPerSecond">Float32 matrix-product rate at the model's projection shape.</param>
/// <param name="DequantWeightsPerSecond">4-bit weights dequantized to float32 per second.</param>
/// <param name="Description">How it was measured (shape, threads), for the report.</param>
/// <param name="ProbeSeconds">Wall time of the whole probe.</param>
internal sealed record MachineThroughput(double GemmFlopsPerSecond, double DequantWeightsPerSecond, string Description, double ProbeSeconds);

/// <summary>The estimated cost of one optimizer step of one method.</summary>
internal sealed record TimeEstimate(string Method, bool GradientCheckpointing, int Batch, int Seq, double Flops, long DequantizedWeights,
    double SecondsPerStep)
{
    public double TokensPerSecond => Batch * (double)Seq / SecondsPerStep;
}

/// <summary>
/// Time per optimizer step from FLOPs and a measured throughput. A step of n = batch × seq tokens costs, with the
/// projections' and lm_head's weights W and attention's score and value products A (causal, so half of n × seq):
/// forward F = 2n·(W + vocab·hidden) + A; full fine-tuning's backward takes weight and input gradients (2F);
/// adapters' frozen weights only need input gradients (F for the linear part, 2A for attention), plus 6n FLOPs per
/// adapter parameter; DoRA re-forms ‖W + s·B·A‖ per target column every step (about (2r + 3) FLOPs per target
/// weight, forward and backward); checkpointing recomputes the blocks' forward; the quantized methods dequantize every
/// 4-bit projection once per forward, backward and recompute. Every FLOP is charged at the probe's GEMM rate, so the
/// estimate is a lower bound: attention softmax, norms and elementwise work run slower than a GEMM, which on small
/// models dominates.
/// </summary>
internal static class TimeEstimator
{
    public static TimeEstimate Estimate(ModelConfig c, string method, int batch, int seq, int rank, string targets, bool checkpointing,
        MachineThroughput machine)
    {
        if (!MemoryEstimator.Methods.Contains(method)) throw new PeftException($"method \"{method}\" is not one of {string.Join(", ", MemoryEstimator.Methods)}");
        if (batch <= 0 || seq <= 0) throw new PeftException($"batch and seq must be > 0, got {batch} × {seq}");
        if (!(machine.GemmFlopsPerSecond > 0) || !(machine.DequantWeightsPerSecond > 0))
            throw new PeftException("the throughput probe measured no positive rate");
        double n = (double)batch * seq;
        var counts = ParameterCounter.Count(c);
        double linear = counts.Projections, head = (double)c.VocabSize * c.HiddenSize;
        double attention = 2.0 * n * seq * c.NumHeads * c.HeadDim * c.NumLayers;   // QKᵀ and PV: 2·2·n·seq·d, halved by the causal mask
        double blocksForward = 2 * n * linear + attention, forward = blocksForward + 2 * n * head;
        bool full = method == "full", dora = method is "dora" or "qdora", quantized = method is "qlora" or "qdora";
        double flops;
        if (full) flops = 3 * forward;
        else
        {
            var names = ParameterCounter.ParseTargets(targets, c);
            double adapter = ParameterCounter.AdapterParameters(c, names, rank, dora);
            double targetWeights = ParameterCounter.PerModule(c, names, rank).Sum(m => (double)m.Module.WeightParameters) * c.NumLayers;
            flops = 2 * forward + attention + 6 * n * adapter + (dora ? 2 * (2.0 * rank + 3) * targetWeights : 0);
        }
        if (checkpointing) flops += blocksForward;
        long dequantized = quantized ? counts.Projections * (checkpointing ? 3 : 2) : 0;
        double seconds = flops / machine.GemmFlopsPerSecond + dequantized / machine.DequantWeightsPerSecond;
        return new TimeEstimate(method, checkpointing, batch, seq, flops, dequantized, seconds);
    }
}
