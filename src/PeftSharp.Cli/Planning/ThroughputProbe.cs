using System.Diagnostics;
using System.Globalization;
using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Cli.Planning;

/// <summary>
/// A short measurement of this machine for `peft calc`'s time estimate: the library's own float32 GEMM at the model's
/// MLP shape (capped so one product stays near a gigaflop) and its NF4 block dequantization, each repeated for a
/// fraction of a second and reported as the median repetition. About a second in all.
/// </summary>
internal static unsafe class ThroughputProbe
{
    const double GemmSeconds = 0.6, DequantSeconds = 0.3;
    const int Tokens = 256, BlockSize = 64;

    public static MachineThroughput Measure(PeftSharp.Compute.ComputeContext compute, ModelConfig c)
    {
        int threads = compute.Threads;
        var total = Stopwatch.StartNew();
        int k = Math.Min(c.HiddenSize, 2048), n = Math.Min(c.IntermediateSize, 4096);
        var rng = new Random(1);
        var x = new float[Tokens * k];
        var w = new float[n * k];
        var y = new float[Tokens * n];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() - 0.5) * 0.05f;
        double gemmSeconds;
        int gemmReps;
        fixed (float* px = x, pw = w, pyFixed = y)
        {
            var a = MatrixView.F32(px, Tokens, k);
            var b = MatrixView.F32(pw, n, k);
            float* py = pyFixed;
            (gemmSeconds, gemmReps) = MedianSeconds(GemmSeconds, () => Gemm.Multiply(compute, false, true, Tokens, n, k, 1f, a, b, 0f, py, n));
        }
        double gemmRate = 2.0 * Tokens * n * k / gemmSeconds;

        int blocks = n * k / BlockSize;
        var packed = new byte[n * k / 2];
        rng.NextBytes(packed);
        var scales = new float[blocks];
        Array.Fill(scales, 0.02f);
        var dst = new float[blocks * BlockSize];
        var table = Quant4Tables.NF4.ToArray();
        double dequantSeconds;
        fixed (byte* pp = packed)
        {
            byte* p = pp;
            (dequantSeconds, _) = MedianSeconds(DequantSeconds, () => Quant4Kernels.DequantizeBlocks(compute.UseAvx2, p, 0, BlockSize, table, scales, dst));
        }
        double dequantRate = (double)blocks * BlockSize / dequantSeconds;
        var inv = CultureInfo.InvariantCulture;
        string description = $"GEMM {(gemmRate / 1e9).ToString("0.0", inv)} GFLOP/s (x[{Tokens}×{k}]·Wᵀ, W [{n}×{k}], {threads} thread{(threads == 1 ? "" : "s")}, " +
                             $"median of {gemmReps}), NF4 dequantize {(dequantRate / 1e6).ToString("0", inv)} M weights/s (one thread)";
        return new MachineThroughput(gemmRate, dequantRate, description, total.Elapsed.TotalSeconds);
    }

    /// <summary>One untimed warm-up, then repetitions until <paramref name="budget"/> seconds (at least three); the median.</summary>
    static (double Seconds, int Reps) MedianSeconds(double budget, Action run)
    {
        run();
        var times = new List<double>();
        var all = Stopwatch.StartNew();
        while (times.Count < 3 || (all.Elapsed.TotalSeconds < budget && times.Count < 1000))
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        times.Sort();
        return (Math.Max(times[times.Count / 2], 1e-9), times.Count);
    }
}
