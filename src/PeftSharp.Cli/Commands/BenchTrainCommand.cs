using System.CommandLine;
using System.Text.Json.Nodes;
using PeftSharp.Cli.Training;
using PeftSharp.Models;
using PeftSharp.Training;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench train --config c.json --method lora|dora|qlora|qdora|full --rank 16 --alpha 32 --targets all-linear --batch 4
/// --seq 256 --steps 3`: median training-step time on random weights of that shape (BF16 base; NF4 + double quant for qlora/qdora).
/// </summary>
internal sealed class BenchTrainCommand : IBenchCommand
{
    public Command Build()
    {
        var config = new Option<string>("--config") { Description = "HF config.json giving the shape", Required = true };
        var method = new Option<string>("--method") { DefaultValueFactory = _ => "lora" };
        var rank = new Option<int>("--rank") { DefaultValueFactory = _ => 16 };
        var alpha = new Option<double>("--alpha") { DefaultValueFactory = _ => 32 };
        var targets = new Option<string>("--targets") { DefaultValueFactory = _ => "all-linear" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "timed steps after one warm-up step (median reported)", DefaultValueFactory = _ => 3 };
        var recompute = new Option<bool>("--gradient-checkpointing") { Description = "recompute block activations in backward" };
        var baseStorage = new Option<string?>("--base")
        {
            Description = "with lora/dora: gptq or awq packs the random projections as such a checkpoint does (RTN, 4-bit, group 128) " +
                          "instead of BF16; default: BF16 (NF4 + double quant for qlora/qdora)",
        };
        var threads = SharedOptions.Threads();
        var device = SharedOptions.Device();
        var cmd = new Command("train", "training-step speed and peak memory on random weights of a config's shape");
        foreach (var o in new Option[] { config, method, rank, alpha, targets, batch, seq, steps, recompute, baseStorage, threads, device }) cmd.Options.Add(o);
        cmd.SetAction(pr => MpiLaunch.Run(comm =>   // under mpirun: each rank steps on --batch, gradients all-reduced
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads), pr.GetValue(device)!);
            var c = ModelConfig.Load(pr.GetValue(config)!);
            var m = PeftSharp.Training.TrainingMethod.Parse(pr.GetValue(method)!, "--method");
            var lora = TrainSettings.Apply(new PeftSharp.Peft.LoraConfig { R = pr.GetValue(rank), LoraAlpha = pr.GetValue(alpha) }, "target_modules", pr.GetValue(targets)!);
            var packing = PackedBase(pr.GetValue(baseStorage), m);
            using var bench = new TrainStepBench(compute, c, m, lora, pr.GetValue(batch), pr.GetValue(seq), pr.GetValue(recompute),
                packing == null ? null : (Func<ModelConfig, CausalLM>)(cfg => CausalLM.CreateRandomPacked(cfg, PeftSharp.Tensors.DType.BF16, 1, packing)), comm);
            bench.Step();   // warm-up: JIT, lazily created optimizer state and scratch
            var times = Enumerable.Range(0, Math.Max(1, pr.GetValue(steps))).Select(_ => bench.Step()).ToList();
            double ms = BenchUtil.Median(times);
            int tokens = bench.Batch * bench.Seq * comm.Size;   // of the whole group
            long reduced = bench.Trainer.AllReducedBytesPerStep;
            double reduceMs = comm.Size > 1 ? BenchUtil.Median(Enumerable.Range(0, 3).Select(_ => AllReduceMs(comm, reduced)).ToList()) : 0;
            Console.WriteLine(new JsonObject
            {
                ["bench"] = "train", ["config"] = Path.GetFileName(pr.GetValue(config)), ["method"] = m.Name, ["rank"] = pr.GetValue(rank),
                ["batch"] = bench.Batch, ["seq"] = bench.Seq, ["threads"] = compute.Threads, ["ranks"] = comm.Size,
                ["allreduce_bytes_per_step"] = reduced, ["allreduce_ms"] = Math.Round(reduceMs, 2),
                ["trainable_params"] = bench.TrainableParameters,
                ["tokens_per_s"] = Math.Round(tokens / (ms / 1000), 2), ["step_ms"] = Math.Round(ms, 1),
                ["peak_rss_mb"] = BenchUtil.PeakRssMb(), ["gflops"] = Math.Round(bench.FlopsPerToken() * tokens / (ms / 1000) / 1e9, 1),
                ["gradient_checkpointing"] = pr.GetValue(recompute),
                ["base"] = packing != null ? packing.ToString() : m.QuantizedBase ? "nf4 + double quant, blocksize 64" : "bf16",
                ["activations_mb"] = Math.Round(bench.Memory().ActivationBytes / 1048576.0, 1), ["compute"] = compute.Describe(),
                ["device"] = pr.GetValue(device),
                ["device_allocated_mb"] = Math.Round(bench.Trainer.DeviceBytes / 1048576.0, 1),
                ["device_used_mb"] = bench.Trainer.DeviceUsedBytes < 0 ? null : Math.Round(bench.Trainer.DeviceUsedBytes / 1048576.0, 1),
            }.ToJsonString());
            return 0;
        }));
        return cmd;
    }

    /// <summary>The packing of --base (null: the method's default base). GPTQ: AutoGPTQ's format, sym, no act-order.</summary>
    static PeftSharp.Quantization.IntGroup.IntGroupConfig? PackedBase(string? name, PeftSharp.Training.TrainingMethod m)
    {
        if (name == null) return null;
        var packing = name.Trim().ToLowerInvariant() switch
        {
            "gptq" => new PeftSharp.Quantization.IntGroup.IntGroupConfig("gptq", PeftSharp.Quantization.IntGroup.IntGroupPacking.GptqV1, 4, 128, false, true),
            "awq" => new PeftSharp.Quantization.IntGroup.IntGroupConfig("awq", PeftSharp.Quantization.IntGroup.IntGroupPacking.AwqGemm, 4, 128, false, false),
            _ => throw new PeftException($"--base: expected gptq or awq, got '{name}'"),
        };
        if (m.IsFull || m.QuantizedBase)
            throw new PeftException($"--base {name}: the packed base is trained with lora or dora (got --method {m.Name})");
        return packing;
    }

    /// <summary>Wall time of one all-reduce of <paramref name="bytes"/> of floats (the gradient buffer's size), ranks aligned first.</summary>
    static double AllReduceMs(PeftSharp.Distributed.ICommunicator comm, long bytes)
    {
        var buffer = new float[bytes / sizeof(float)];
        comm.Barrier();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        comm.AllReduceSum(buffer);
        return sw.Elapsed.TotalMilliseconds;
    }
}
