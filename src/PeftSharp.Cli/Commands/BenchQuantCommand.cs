using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PeftSharp.Quantization;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft bench quant`: 4-bit quantize / dequantize throughput on a seeded 4096×4096 weight.</summary>
internal sealed class BenchQuantCommand : IBenchCommand
{
    public Command Build()
    {
        var cmd = new Command("quant",
            "4-bit (NF4/FP4) quantize and dequantize of a seeded 4096x4096 float32 weight, blocksize 64; median of --reps runs. " +
            "GB/s counts float32 bytes processed: n*4/1e9 per second (input read for quantize, output written for dequantize). " +
            "Dequantize writes the full tensor to float32 with all --threads; dequant_rows is the per-layer scratch path: " +
            "64-row chunks into one reused 64x4096 buffer, one thread.");
        var type = new Option<string>("--type") { Description = "nf4 or fp4", DefaultValueFactory = _ => "nf4" };
        var dq = new Option<bool>("--double-quant") { Description = "also quantize the absmax values (QLoRA double quantization)" };
        var reps = new Option<int>("--reps") { Description = "timed repetitions (median is reported)", DefaultValueFactory = _ => 5 };
        var threads = SharedOptions.Threads();
        cmd.Options.Add(type);
        cmd.Options.Add(dq);
        cmd.Options.Add(reps);
        cmd.Options.Add(threads);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            var qt = Quant4TypeNames.ParseBnb(pr.GetValue(type) ?? "nf4", "--type");
            Run(compute, qt, pr.GetValue(dq), Math.Max(1, pr.GetValue(reps)));
            return 0;
        }));
        return cmd;
    }

    static void Run(PeftSharp.Compute.ComputeContext compute, Quant4Type type, bool doubleQuant, int reps)
    {
        const int rows = 4096, cols = 4096;
        int n = rows * cols;
        var w = new float[n];
        var rng = new Random(1234);
        for (int i = 0; i < n; i += 2)
        {
            // Box–Muller normals, std 0.02 (a typical LLM weight scale)
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble(), r = Math.Sqrt(-2 * Math.Log(u1)) * 0.02;
            w[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            w[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
        var dst = new float[n];
        // warm-up (JIT, page faults)
        using (var warm = Quantized4Bit.Quantize(compute, w, [rows, cols], type, 64, doubleQuant)) warm.Dequantize(compute, dst);

        var qTimes = new List<double>();
        var dTimes = new List<double>();
        var rTimes = new List<double>();
        var scratch = new float[64 * cols];
        double maxErr = 0;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            using var q = Quantized4Bit.Quantize(compute, w, [rows, cols], type, 64, doubleQuant);
            qTimes.Add(sw.Elapsed.TotalSeconds);
            sw.Restart();
            q.Dequantize(compute, dst);
            dTimes.Add(sw.Elapsed.TotalSeconds);
            sw.Restart();
            for (int r0 = 0; r0 < rows; r0 += 64) q.DequantizeRange(compute, (long)r0 * cols, scratch);
            rTimes.Add(sw.Elapsed.TotalSeconds);
            if (r == 0) for (int i = 0; i < n; i++) maxErr = Math.Max(maxErr, Math.Abs(dst[i] - w[i]));
        }
        double gb = n * 4 / 1e9;
        var result = new Dictionary<string, object>
        {
            ["bench"] = type.BnbName(),
            ["n"] = n,
            ["quant_gb_per_s"] = Math.Round(gb / Median(qTimes), 3),
            ["dequant_gb_per_s"] = Math.Round(gb / Median(dTimes), 3),
            ["dequant_rows_gb_per_s"] = Math.Round(gb / Median(rTimes), 3),
            ["blocksize"] = 64,
            ["double_quant"] = doubleQuant,
            ["threads"] = compute.Threads,
            ["reps"] = reps,
            ["max_abs_error"] = Math.Round(maxErr, 6),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
    }

    static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
