using System.Text.Json.Nodes;
using PeftSharp.Compute;
using PeftSharp.IO;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Training;

namespace PeftSharp.Tests.Distributed;

/// <summary>The library API's data parallelism without mpirun: TrainingRun on 2 thread-ranks × b with gradient
/// accumulation equals one TrainingRun with batch 2b (loss curve, eval loss, adapter), and only rank 0 writes.</summary>
public class InProcessDataParallelTests
{
    static TrainingOptions Options(string model, string data, string output, int batch) => new()
    {
        ModelDir = model, DataFile = data, OutputDir = output, Method = "lora",
        Lora = new PeftSharp.Peft.LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", LoraDropout = 0 },
        BatchSize = batch, GradientAccumulationSteps = 2, MaxSteps = 3, MaxLength = 32, LearningRate = 0.01, LrScheduler = "cosine",
        EvalFraction = 0.25, EvalSteps = 2, SaveSteps = 0, Seed = 5,
    };

    static List<double> Values(string output, string key) =>
        File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(l => l[key] != null).Select(l => l[key]!.GetValue<double>()).ToList();

    [Fact]
    public void Two_thread_ranks_with_accumulation_train_as_one_process_with_the_doubled_batch()
    {
        string model = TinyRun.ModelDir(), data = TinyRun.Data(40), single = TinyRun.Temp("ip1"), pair = TinyRun.Temp("ip2");
        using (var compute = ComputeContext.CreateCpu(new ComputeOptions { Threads = 1 }))
        using (var run = new TrainingRun(Options(model, data, single, 4), compute))
            run.Run();
        ThreadGroup.Run(2, comm =>
        {
            using var compute = ComputeContext.CreateCpu(new ComputeOptions { Threads = 1 });
            using var run = new TrainingRun(Options(model, data, pair, 2), compute, null, comm);
            run.Run();
        });

        foreach (var key in new[] { "loss", "eval_loss", "grad_norm" })
        {
            var a = Values(single, key);
            var b = Values(pair, key);
            Assert.Equal(a.Count, b.Count);
            Assert.NotEmpty(a);
            for (int i = 0; i < a.Count; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * Math.Abs(a[i]), $"{key}[{i}]: {b[i]} vs {a[i]}");
        }
        using var e = SafetensorsFile.Open(Path.Combine(single, "adapter", "adapter_model.safetensors"));
        using var p = SafetensorsFile.Open(Path.Combine(pair, "adapter", "adapter_model.safetensors"));
        foreach (var entry in e.Entries)
        {
            using var x = e.Get(entry.Name);
            using var y = p.Get(entry.Name);
            float[] u = x.Floats.ToArray(), v = y.Floats.ToArray();
            double diff = Math.Sqrt(u.Zip(v, (s, t) => (double)(s - t) * (s - t)).Sum()), norm = Math.Sqrt(u.Sum(s => (double)s * s));
            Assert.True(diff <= 1e-5 * norm + 1e-12, $"{entry.Name}: |Δ| {diff:E2} vs |x| {norm:E2}");
        }
    }
}
