using System.Diagnostics;
using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Server.Engine;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// The four-adapter cost measured step by step: one decode step of the same batch (one token per sequence, every
/// sequence at the same position) over one adapter and over four, alternated, each timed as wall and process CPU time.
/// Separate runs of the streaming cases differ by more than the cost on a shared machine; alternating steps and CPU
/// time make the two comparable.
/// </summary>
internal static class BenchServeSteps
{
    public static object Measure(PeftModel pm, ComputeContext compute, string[] adapters, int streams, int position, int steps)
    {
        var c = pm.Model.Config;
        using var forward = new BatchForward(pm.Model, compute);
        var caches = Enumerable.Range(0, streams).Select(_ => new KvCacheAttention(c, position + 1)).ToArray();
        try
        {
            var rng = new Random(3);
            var ids = Enumerable.Range(0, streams).Select(_ => rng.Next(c.VocabSize)).ToArray();
            var positions = Enumerable.Repeat(position, streams).ToArray();
            var rows = caches.Select((cache, i) => new SequenceRows(cache, i, 1, position)).ToList();
            var logits = Enumerable.Range(0, streams).Select(_ => new float[c.VocabSize]).ToList();
            List<RowSegment> Segments(int count) => Enumerable.Range(0, count).Select(a =>
            {
                int start = a * streams / count, end = (a + 1) * streams / count;
                return pm.Segment(start, end - start, adapters[a]);
            }).ToList();
            var routes = new[] { Segments(1), Segments(Math.Min(adapters.Length, streams)) };
            var wall = new[] { new List<double>(), new List<double>() };
            var cpu = new[] { new List<double>(), new List<double>() };
            for (int s = -2; s < steps; s++)          // two warm-up rounds
                for (int k = 0; k < 2; k++)
                {
                    int which = (s & 1) == 0 ? k : 1 - k;   // alternate which goes first
                    double cpu0 = BenchOpsCommand.ProcessCpuMs();
                    long t0 = Stopwatch.GetTimestamp();
                    forward.Run(ids, positions, rows, routes[which], logits);
                    if (s < 0) continue;
                    wall[which].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    cpu[which].Add(BenchOpsCommand.ProcessCpuMs() - cpu0);
                }
            double w1 = BenchUtil.Median(wall[0]), w4 = BenchUtil.Median(wall[1]), c1 = BenchUtil.Median(cpu[0]), c4 = BenchUtil.Median(cpu[1]);
            return new
            {
                bench = "serve-step", streams, adapters = routes[1].Count, position, steps,
                wall_ms_one_adapter = Math.Round(w1, 1), wall_ms_four_adapters = Math.Round(w4, 1), wall_cost_pct = Math.Round(100 * (w4 / w1 - 1), 1),
                cpu_ms_one_adapter = Math.Round(c1, 1), cpu_ms_four_adapters = Math.Round(c4, 1), cpu_cost_pct = Math.Round(100 * (c4 / c1 - 1), 1),
            };
        }
        finally
        {
            foreach (var cache in caches) cache.Dispose();
        }
    }
}
