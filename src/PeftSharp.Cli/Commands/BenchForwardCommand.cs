using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft bench forward --config c.json --batch 4 --seq 256`: forward tokens/s on random weights of that shape.</summary>
internal sealed class BenchForwardCommand : IBenchCommand
{
    public Command Build()
    {
        var config = new Option<string>("--config") { Description = "HF config.json giving the shape", Required = true };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 256 };
        var reps = new Option<int>("--reps") { Description = "timed repetitions (median reported)", DefaultValueFactory = _ => 3 };
        var dtype = new Option<string>("--dtype") { Description = "weight storage dtype: bf16, f16, f32", DefaultValueFactory = _ => "bf16" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("forward", "forward-pass tokens/s on random weights of a config's shape");
        foreach (var o in new Option[] { config, batch, seq, reps, dtype, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            var c = ModelConfig.Load(pr.GetValue(config)!);
            int b = pr.GetValue(batch), t = pr.GetValue(seq);
            var dt = BenchUtil.ParseDType(pr.GetValue(dtype)!);
            using var model = CausalLM.CreateRandom(c, dt, 1);
            using var pass = new ModelPass(model, compute, b, t, recompute: true);
            var rng = new Random(1);
            int n = b * t;
            var ids = Enumerable.Range(0, n).Select(_ => rng.Next(c.VocabSize)).ToArray();
            var pos = Enumerable.Range(0, n).Select(i => i % t).ToArray();
            var times = new List<double>();
            for (int r = 0; r <= pr.GetValue(reps); r++)
            {
                var sw = Stopwatch.StartNew();
                pass.Forward(ids, pos, [], training: false);
                if (r > 0) times.Add(sw.Elapsed.TotalMilliseconds); // first run warms up
            }
            double ms = BenchUtil.Median(times);
            Console.WriteLine(new JsonObject
            {
                ["bench"] = "forward", ["config"] = Path.GetFileName(pr.GetValue(config)), ["batch"] = b, ["seq"] = t,
                ["dtype"] = dt.ToString().ToLowerInvariant(), ["threads"] = compute.Threads,
                ["forward_ms"] = Math.Round(ms, 1), ["tokens_per_s"] = Math.Round(n / (ms / 1000), 1),
                ["peak_rss_mb"] = BenchUtil.PeakRssMb(),
            }.ToJsonString());
            return 0;
        }));
        return cmd;
    }
}
