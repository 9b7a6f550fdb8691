using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PeftSharp.Inference;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft bench sampler`: milliseconds per sampled token over a synthetic LLM-like logits row (a Gaussian body
/// plus a few dominant tokens), for each sampling mode. One JSON line per mode, median of the repeats.</summary>
internal sealed class BenchSamplerCommand : IBenchCommand
{
    public Command Build()
    {
        var vocab = new Option<int>("--vocab") { Description = "vocabulary size", DefaultValueFactory = _ => 151936 };
        var repeats = new Option<int>("--repeats") { Description = "timed calls per mode", DefaultValueFactory = _ => 50 };
        var cmd = new Command("sampler", "next-token sampling cost per mode (greedy, temperature, top-k, top-p, penalty)");
        cmd.Options.Add(vocab);
        cmd.Options.Add(repeats);
        cmd.SetAction(pr => CliErrors.Run(() => Run(pr.GetValue(vocab), pr.GetValue(repeats))));
        return cmd;
    }

    static int Run(int vocab, int repeats)
    {
        if (vocab < 2) throw new PeftException($"--vocab must be at least 2, got {vocab}");
        if (repeats < 1) throw new PeftException($"--repeats must be at least 1, got {repeats}");
        var rng = new Random(1);
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
            logits[i] = (float)(2 * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        for (int j = 0; j < 30; j++) logits[rng.Next(vocab)] = 12 + 0.1f * j;
        int[] context = Enumerable.Range(0, Math.Min(512, vocab)).Select(_ => rng.Next(vocab)).ToArray();

        (string Mode, SamplingOptions Options)[] modes =
        [
            ("greedy", new SamplingOptions()),
            ("temperature", new SamplingOptions(Temperature: 1)),
            ("top_k50_top_p0.9", new SamplingOptions(Temperature: 0.7f, TopK: 50, TopP: 0.9f)),
            ("top_p0.9", new SamplingOptions(Temperature: 0.7f, TopP: 0.9f)),
            ("top_p0.95_penalty1.1", new SamplingOptions(Temperature: 1, TopP: 0.95f, RepetitionPenalty: 1.1f)),
        ];
        foreach (var (mode, options) in modes)
        {
            var sampler = new Sampler(options);
            for (int i = 0; i < 3; i++) sampler.Next(logits, context); // warm-up (JIT, buffers)
            var ms = new double[repeats];
            for (int i = 0; i < repeats; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                sampler.Next(logits, context);
                ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
            Array.Sort(ms);
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bench = "sampler",
                mode,
                vocab,
                repeats,
                median_ms = Math.Round(ms[repeats / 2], 4),
                min_ms = Math.Round(ms[0], 4),
            }));
        }
        return 0;
    }
}
