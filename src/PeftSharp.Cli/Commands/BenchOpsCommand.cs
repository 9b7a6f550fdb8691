using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using PeftSharp.Kernels;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench ops`: median wall time of the non-GEMM kernels (attention fwd/bwd/decode, RMSNorm, SwiGLU, RoPE) at one
/// layer's shapes. Defaults are Llama-3.2-1B (hidden 2048, 32 q heads, 8 kv heads, head_dim 64, FFN 8192).
/// Cross-entropy is left out: its time is the LM-head GEMM, measured by the GEMM bench.
/// </summary>
internal sealed class BenchOpsCommand : IBenchCommand
{
    public Command Build()
    {
        var threads = SharedOptions.Threads();
        var batch = new Option<int>("--batch") { Description = "sequences per batch", DefaultValueFactory = _ => 1 };
        var seq = new Option<int>("--seq") { Description = "tokens per sequence", DefaultValueFactory = _ => 512 };
        var heads = new Option<int>("--heads") { Description = "query heads", DefaultValueFactory = _ => 32 };
        var kvHeads = new Option<int>("--kv-heads") { Description = "key/value heads", DefaultValueFactory = _ => 8 };
        var headDim = new Option<int>("--head-dim") { Description = "head dimension", DefaultValueFactory = _ => 64 };
        var ffn = new Option<int>("--ffn") { Description = "MLP intermediate size", DefaultValueFactory = _ => 8192 };
        var reps = new Option<int>("--reps") { Description = "timed repetitions (median reported)", DefaultValueFactory = _ => 7 };
        var cmd = new Command("ops", "attention, RMSNorm, SwiGLU and RoPE kernels at one layer's shapes");
        foreach (var o in new Option[] { threads, batch, seq, heads, kvHeads, headDim, ffn, reps }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            Run(compute, pr.GetValue(batch), pr.GetValue(seq), pr.GetValue(heads), pr.GetValue(kvHeads), pr.GetValue(headDim), pr.GetValue(ffn), pr.GetValue(reps));
            return 0;
        });
        return cmd;
    }

    static void Run(PeftSharp.Compute.ComputeContext compute, int b, int t, int hq, int hkv, int d, int ffn, int reps)
    {
        int n = b * t, c = hq * d;
        var rng = new Random(1);
        float[] R(int len) { var a = new float[len]; for (int i = 0; i < len; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        var q = R(n * hq * d); var k = R(n * hkv * d); var v = R(n * hkv * d); var dout = R(n * hq * d);
        var o = new float[q.Length]; var lse = new float[n * hq];
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        string shape = $"B={b} T={t} Hq={hq} Hkv={hkv} D={d}";
        double attnFlops = 2.0 * b * hq * (double)t * t * d; // causal: half of 2 GEMMs of 2·T²·D
        Report(compute, "attention_forward", shape, reps, attnFlops, () => Attention.Forward(compute, o, lse, q, k, v, default, b, t, hq, hkv, d));
        Report(compute, "attention_backward", shape, reps, 2.5 * attnFlops, () => Attention.Backward(compute, dq, dk, dv, dout, o, lse, q, k, v, default, b, t, hq, hkv, d));
        var oneQ = R(hq * d); var oneO = new float[hq * d];
        Report(compute, "attention_decode_step", $"start={t - 1} Hq={hq} Hkv={hkv} D={d}", reps, 4.0 * hq * t * d,
            () => Attention.ForwardCached(compute, oneO, oneQ, k.AsSpan(0, t * hkv * d), v.AsSpan(0, t * hkv * d), t - 1, 1, hq, hkv, d));

        var x = R(n * c); var w = R(c); var y = new float[n * c]; var rstd = new float[n]; var dx = new float[n * c]; var dw = new float[c];
        Report(compute, "rmsnorm_forward", $"n={n} c={c}", reps, 4.0 * n * c, () => RmsNorm.Forward(compute, y, rstd, x, w, n, c, 1e-5f));
        Report(compute, "rmsnorm_backward", $"n={n} c={c}", reps, 8.0 * n * c, () => RmsNorm.Backward(compute, dx, dw, dout.AsSpan(0, n * c), x, w, rstd, n, c));

        var g = R(n * ffn); var u = R(n * ffn); var s = new float[n * ffn]; var dg = new float[n * ffn]; var du = new float[n * ffn];
        Report(compute, "swiglu_forward", $"n={n} f={ffn}", reps, 0, () => SwiGlu.Forward(compute, s, g, u));
        Report(compute, "swiglu_backward", $"n={n} f={ffn}", reps, 0, () => SwiGlu.Backward(compute, dg, du, s, g, u));

        var table = new RopeTable(d, t, 500000, new RopeScaling("llama3", 32, 1, 4, 8192));
        var pos = new int[n]; for (int i = 0; i < n; i++) pos[i] = i % t;
        Report(compute, "rope_forward", $"n={n} H={hq} D={d}", reps, 0, () => Rope.Forward(compute, q, pos, hq, table));
    }

    [DllImport("libc", EntryPoint = "getrusage")]
    static extern unsafe int GetRusage(int who, long* usage);

    /// <summary>User + system CPU time of the whole process. getrusage on Linux (µs resolution); Process.TotalProcessorTime
    /// elsewhere (it reads /proc in 10 ms ticks on Linux, too coarse for these kernels).</summary>
    internal static unsafe double ProcessCpuMs()
    {
        if (OperatingSystem.IsLinux())
        {
            long* ru = stackalloc long[18]; // struct rusage: ru_utime, ru_stime (timeval = 2 longs), then 14 longs
            if (GetRusage(0, ru) == 0) return (ru[0] + ru[2]) * 1e3 + (ru[1] + ru[3]) * 1e-3;
        }
        return Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
    }

    static void Report(PeftSharp.Compute.ComputeContext compute, string op, string shape, int reps, double flops, Action body)
    {
        // warm-up: JIT tiers (a method reaches optimized code after ~30 calls or on-stack replacement), scratch buffers
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || (i < 50 && warm.ElapsedMilliseconds < 300); i++) body();
        var ms = new double[Math.Max(1, reps)];
        var cpu = new double[ms.Length];
        for (int i = 0; i < ms.Length; i++)
        {
            double cpu0 = ProcessCpuMs();
            var sw = Stopwatch.StartNew();
            body();
            ms[i] = sw.Elapsed.TotalMilliseconds;
            cpu[i] = ProcessCpuMs() - cpu0;
        }
        Array.Sort(cpu);
        Array.Sort(ms);
        double median = ms[ms.Length / 2];
        var line = new Dictionary<string, object>
        {
            ["bench"] = "ops", ["op"] = op, ["shape"] = shape, ["threads"] = compute.Threads, ["reps"] = ms.Length,
            ["median_ms"] = Math.Round(median, 3),
            // CPU time of the whole process: on a shared machine it shows the work done, wall time shows the wait too.
            ["median_cpu_ms"] = Math.Round(cpu[cpu.Length / 2], 3),
        };
        if (flops > 0) line["gflops"] = Math.Round(flops / (median * 1e6), 2);
        Console.WriteLine(JsonSerializer.Serialize(line));
    }
}
