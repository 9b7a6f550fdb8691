using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Server.Engine;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench serve --config c.json`: the serving engine's continuous batching on random weights of that shape with
/// r16 all-linear LoRA adapters (random, B ≠ 0). For 1, 4, 16 concurrent greedy streams over 1 and 4 distinct adapters:
/// aggregate decode tokens/s (tokens after each stream's first, over the time from the first stream's first token to
/// the last token) and p50/p95 of the time between a stream's consecutive tokens. One JSON line per case, a summary
/// line of alternated single decode steps over one and four adapters (<see cref="BenchServeSteps"/>), a summary
/// line with the issue's two ratios (most streams against one; four adapters against one at most streams), and first a
/// memory line: resident memory with 0, 1, 4 and 8 copies of an adapter loaded from disk, against its tensor bytes.
/// </summary>
internal sealed class BenchServeCommand : IBenchCommand
{
    public Command Build()
    {
        var config = new Option<string>("--config") { Description = "HF config.json giving the shape", Required = true };
        var prompt = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 32 };
        var tokens = new Option<int>("--new-tokens") { DefaultValueFactory = _ => 24 };
        var rank = new Option<int>("--rank") { DefaultValueFactory = _ => 16 };
        var streams = new Option<string>("--streams") { DefaultValueFactory = _ => "1,4,16" };
        var stepCount = new Option<int>("--steps") { Description = "alternated decode steps of the step-by-step comparison", DefaultValueFactory = _ => 16 };
        var dtype = new Option<string>("--dtype") { Description = "weight storage dtype: bf16, f16, f32", DefaultValueFactory = _ => "bf16" };
        var dora = new Option<bool>("--dora") { Description = "DoRA adapters instead of LoRA" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("serve", "continuous-batching decode throughput over 1 and 4 adapters");
        foreach (var o in new Option[] { config, prompt, tokens, rank, streams, stepCount, dtype, dora, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            var c = ModelConfig.Load(pr.GetValue(config)!);
            using var pm = new PeftModel(CausalLM.CreateRandom(c, BenchUtil.ParseDType(pr.GetValue(dtype)!), 1), compute);
            string[] names = ["a0", "a1", "a2", "a3"];
            var rng = new Random(2);
            long adapterBytes = 0;
            foreach (var n in names)
            {
                pm.AddAdapter(n, new LoraConfig { R = pr.GetValue(rank), LoraAlpha = 2 * pr.GetValue(rank), TargetModulesRegex = "all-linear", UseDora = pr.GetValue(dora) }, (ulong)n[1]);
                foreach (var (_, t) in pm.AdapterTensors(n))
                {
                    adapterBytes += t.ByteLength;
                    var v = t.Floats;
                    for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.02f;
                }
            }
            pm.SetActive(null);
            Console.WriteLine(JsonSerializer.Serialize(AdapterMemory(pm, names[0], [1, 4, 8])));
            using var engine = new ServeEngine(pm, compute, new EngineOptions { MaxBatch = 64, MaxQueue = 64 });
            int p = pr.GetValue(prompt), newTokens = pr.GetValue(tokens);
            var counts = pr.GetValue(streams)!.Split(',').Select(s => int.TryParse(s, out var x) && x > 0 ? x : throw new PeftException($"--streams: '{s}' is not a positive count")).ToArray();
            Run(engine, [names[0]], 1, p, 4, rng);   // warm-up (JIT, buffers)
            var rate = new Dictionary<(int Adapters, int Streams), double>();
            foreach (int adapters in new[] { 1, 4 })
                foreach (int s in counts)
                {
                    var r = Run(engine, names[..adapters], s, p, newTokens, rng);
                    rate[(adapters, s)] = r.TokensPerSecond;
                    Console.WriteLine(JsonSerializer.Serialize(new
                    {
                        bench = "serve", streams = s, adapters, kind = pr.GetValue(dora) ? "dora" : "lora", prompt_tokens = p, new_tokens = newTokens, rank = pr.GetValue(rank),
                        decode_tokens_per_s = Math.Round(r.TokensPerSecond, 2), p50_ms_per_token = Math.Round(r.P50, 2), p95_ms_per_token = Math.Round(r.P95, 2),
                        adapter_mib_each = Math.Round(adapterBytes / 4.0 / (1 << 20), 2), threads = compute.Options.Threads,
                    }));
                }
            int most = counts.Max();
            Console.WriteLine(JsonSerializer.Serialize(BenchServeSteps.Measure(pm, compute, names, most, p, pr.GetValue(stepCount))));
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bench = "serve-summary", streams = most,
                // the targets: most streams ≥ 4× one stream (one adapter); four adapters cost ≤ 15 % at most streams
                speedup_vs_1_stream = rate.TryGetValue((1, 1), out var one) ? Math.Round(rate[(1, most)] / one, 2) : (double?)null,
                four_adapter_cost_pct = Math.Round(100 * (1 - rate[(4, most)] / rate[(1, most)]), 1),
            }));
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// Resident memory (VmRSS), managed heap and native tensor bytes with 0 and then each of <paramref name="counts"/>
    /// copies of <paramref name="adapter"/> loaded from disk the way `peft serve` loads them, against the adapter's
    /// own tensor bytes: each loaded adapter should add about that much. The copies are unloaded again.
    /// </summary>
    static object AdapterMemory(PeftModel pm, string adapter, int[] counts)
    {
        var dir = Path.Combine(Path.GetTempPath(), "peft-bench-serve-" + Guid.NewGuid().ToString("N")[..12]);
        pm.Save(dir, adapter);
        long own = pm.AdapterTensors(adapter).Sum(t => t.Tensor.ByteLength);
        var loaded = new List<string>();
        var rss = new List<double>();
        var managed = new List<double>();
        var native = new List<double>();
        void Measure()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            rss.Add(PeftSharp.Training.ProcessMemory.CurrentRssMb());
            managed.Add(Math.Round(GC.GetTotalMemory(false) / 1048576.0, 1));
            native.Add(Math.Round(Tensors.NativeBuffer.LiveBytes / 1048576.0, 1));
        }
        try
        {
            Measure();
            foreach (int n in counts)
            {
                while (loaded.Count < n) { var name = $"mem{loaded.Count}"; pm.LoadAdapter(dir, name); loaded.Add(name); }
                Measure();
            }
        }
        finally
        {
            foreach (var n in loaded) pm.Unload(n);
            Directory.Delete(dir, recursive: true);
        }
        int span = counts[^1] - counts[0];
        double Slope(List<double> xs) => Math.Round((xs[^1] - xs[1]) / span, 2);
        return new
        {
            bench = "serve-memory", adapters_loaded = counts.Prepend(0).ToArray(), adapter_tensor_mib = Math.Round(own / 1048576.0, 2),
            rss_mib = rss, managed_heap_mib = managed, native_tensor_mib = native,
            // per adapter from the first to the last count (the first load may reuse memory freed earlier)
            rss_mib_per_adapter = Slope(rss), managed_mib_per_adapter = Slope(managed), native_mib_per_adapter = Slope(native),
        };
    }

    static (double TokensPerSecond, double P50, double P95) Run(ServeEngine engine, string[] adapters, int streams, int promptTokens, int newTokens, Random rng)
    {
        int vocab = engine.Model.Model.Config.VocabSize;
        var submitted = Enumerable.Range(0, streams).Select(i =>
            engine.Submit(new GenerationRequest(Enumerable.Range(0, promptTokens).Select(_ => rng.Next(vocab)).ToArray(), adapters[i % adapters.Length],
                newTokens, SamplingOptions.Greedy))).ToArray();
        var stamps = submitted.Select(s => Task.Run(async () =>
        {
            var times = new List<long>();
            await foreach (var _ in s.ReadAllAsync()) times.Add(Stopwatch.GetTimestamp());
            return times;
        })).ToArray();
        Task.WaitAll(stamps);
        var all = stamps.Select(t => t.Result).ToArray();
        long start = all.Min(t => t[0]), end = all.Max(t => t[^1]);
        int decoded = all.Sum(t => t.Count - 1);
        var gaps = all.SelectMany(t => t.Zip(t.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a, b).TotalMilliseconds)).Order().ToArray();
        double seconds = Stopwatch.GetElapsedTime(start, end).TotalSeconds;
        return (decoded / seconds, gaps[gaps.Length / 2], gaps[(int)Math.Min(gaps.Length - 1, Math.Ceiling(gaps.Length * 0.95) - 1)]);
    }
}
