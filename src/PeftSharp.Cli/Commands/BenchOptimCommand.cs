using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PeftSharp.Optim;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft bench optim`: milliseconds per optimizer step, AdamW (float32 states) vs AdamW8bit.</summary>
internal sealed class BenchOptimCommand : IBenchCommand
{
    public Command Build()
    {
        var cmd = new Command("optim",
            "time of one optimizer step over one seeded parameter tensor of --n float32 elements: AdamW (torch flavor, " +
            "float32 states) and AdamW8bit (bitsandbytes blockwise 8-bit states); median of --reps steps after 2 warm-up steps");
        var n = new Option<int>("--n") { Description = "parameter elements", DefaultValueFactory = _ => 4 * 1024 * 1024 };
        var reps = new Option<int>("--reps") { Description = "timed steps", DefaultValueFactory = _ => 9 };
        var threads = SharedOptions.Threads();
        cmd.Options.Add(n);
        cmd.Options.Add(reps);
        cmd.Options.Add(threads);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            int count = Math.Max(1, pr.GetValue(n)), r = Math.Max(1, pr.GetValue(reps));
            var rng = new Random(42);
            var p = new float[count];
            var g = new float[count];
            for (int i = 0; i < count; i++) { p[i] = (float)(rng.NextDouble() - 0.5); g[i] = (float)(rng.NextDouble() - 0.5) * 1e-2f; }
            double t32 = Time(new AdamW(compute), p, g, r), t8 = Time(new AdamW8bit(compute), p, g, r);
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["bench"] = "optim",
                ["n"] = count,
                ["adamw32_ms"] = Math.Round(t32 * 1e3, 3),
                ["adamw8bit_ms"] = Math.Round(t8 * 1e3, 3),
                ["state_bytes_32"] = 8L * count,
                ["state_bytes_8bit"] = 2L * count + 8L * ((count + 255) / 256),
                ["threads"] = compute.Threads,
            }));
            return 0;
        }));
        return cmd;
    }

    static double Time(Optimizer opt, float[] p0, float[] g, int reps)
    {
        var p = (float[])p0.Clone();
        var times = new List<double>();
        for (int k = 0; k < reps + 2; k++)
        {
            var sw = Stopwatch.StartNew();
            opt.BeginStep();
            opt.Step(0, p, g, 1e-3f);
            if (k >= 2) times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
