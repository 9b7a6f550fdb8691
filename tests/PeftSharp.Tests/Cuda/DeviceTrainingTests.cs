using PeftSharp.Compute;
using PeftSharp.Cuda;
using PeftSharp.Optim;
using PeftSharp.Training;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.Cuda;

/// <summary>
/// A whole training step on the device path (ILGPU's CPU accelerator) equals the CPU trainer's: loss, gradient norm and
/// the updated adapter, within <see cref="StepChecks.Tolerance"/> (1e-4 relative), for LoRA over BF16, QLoRA over NF4
/// with double quantization, and a sliding-window (Mistral-style) model, on a packed batch.
/// </summary>
public sealed class DeviceTrainingTests
{
    static ComputeContext Cpu() => ComputeContext.CreateCpu(new ComputeOptions { Threads = 2 });
    static ComputeContext OnDevice() => CudaCompute.CreateOnIlgpuCpu(new ComputeOptions { Threads = 2 });

    [Theory]
    [InlineData(false, null)]
    [InlineData(true, null)]
    [InlineData(false, 5)]
    public void A_device_step_equals_the_cpu_step(bool qlora, int? window)
    {
        using var cpu = Cpu();
        using var dev = OnDevice();
        var r = StepChecks.Compare("step", dev, cpu, StepChecks.TinyLlama(window), qlora);
        Assert.True(r.Passed, $"device step differs from the CPU step: relative error {r.Error:g3} > {r.Tolerance:g3}");
    }

    [Fact]
    public void The_step_changes_the_adapter_and_the_loss_is_finite()
    {
        using var cpu = Cpu();
        using var dev = OnDevice();
        var c = StepChecks.TinyLlama();
        var batch = StepChecks.PackedBatch(c.VocabSize);
        var (loss, norm, values) = StepChecks.RunStep(dev, cpu, c, false, batch);
        Assert.True(double.IsFinite(loss) && loss > 0, $"loss {loss}");
        Assert.True(norm > 0, "a zero gradient norm would make the comparison vacuous");
        Assert.Equal(2 * 7 * c.NumLayers, values.Length);   // A and B of all seven projections per layer
    }

    [Fact]
    public void The_device_optimizer_state_is_copied_back_for_checkpoints()
    {
        using var cpu = Cpu();
        using var dev = OnDevice();
        var c = StepChecks.TinyLlama();
        var model = CausalLM.CreateRandom(c, DType.BF16, 7);
        using var pm = new PeftModel(model, dev);
        pm.AddAdapter("a", new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = "all-linear" }, 1);
        using var trainer = new Trainer(pm, dev, new TrainerOptions { LearningRate = 1e-3, LrScheduler = "constant", BatchSize = 2, MaxLength = 12 });
        trainer.Step([StepChecks.PackedBatch(c.VocabSize)], 0, new LrSchedule("constant", 1e-3, 0, int.MaxValue));
        var opt = (AdamW)trainer.Optimizer;
        Assert.Equal(1, opt.StepCount);
        var state = opt.State(trainer.Parameters.Count - 1);
        Assert.NotNull(state);
        Assert.Contains(state!.Value.v, x => x > 0);   // second moments of a nonzero gradient
    }

    [Theory]
    [InlineData("lora")]
    [InlineData("qlora")]
    public void The_train_bench_runs_its_steps_on_the_device(string method)
    {
        using var dev = OnDevice();
        var lora = new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" };
        using var bench = new TrainStepBench(dev, StepChecks.TinyLlama(), TrainingMethod.Parse(method, "--method"), lora, 2, 8, recompute: false);
        bench.Step();
        Assert.True(bench.Trainer.DeviceBytes > 0, "the step did not run on the device");
        Assert.Equal(-1, bench.Trainer.DeviceUsedBytes);   // the driver's count exists only on CUDA
        Assert.Equal(0, bench.Memory().ActivationBytes);    // no CPU pass was made
        Assert.Contains("ilgpu-cpu", dev.Describe());
    }

    [Fact]
    public void Unsupported_settings_are_refused_with_their_name()
    {
        using var dev = OnDevice();
        var c = StepChecks.TinyLlama();
        var model = CausalLM.CreateRandom(c, DType.BF16, 7);
        using var pm = new PeftModel(model, dev);
        pm.AddAdapter("a", new LoraConfig { R = 2, UseDora = true, TargetModulesRegex = "all-linear" }, 1);
        var e = Assert.Throws<PeftException>(() => new Trainer(pm, dev, new TrainerOptions { BatchSize = 2, MaxLength = 12 }));
        Assert.Contains("DoRA", e.Message);
        pm.Unload("a");
        pm.AddAdapter("b", new LoraConfig { R = 2, TargetModulesRegex = "all-linear" }, 1);
        var o = Assert.Throws<PeftException>(() => new Trainer(pm, dev, new TrainerOptions { BatchSize = 2, MaxLength = 12, Optimizer = "adamw8bit" }));
        Assert.Contains("adamw8bit", o.Message);
    }

    [Fact]
    public void A_gptq_base_is_refused_before_anything_is_uploaded()
    {
        using var dev = OnDevice();
        var c = StepChecks.TinyLlama() with { IntermediateSize = 128 };
        var gptq = new PeftSharp.Quantization.IntGroup.IntGroupConfig("gptq", PeftSharp.Quantization.IntGroup.IntGroupPacking.GptqV1, 4, 32, false, true);
        var model = CausalLM.CreateRandomPacked(c, DType.BF16, 1, gptq);
        using var pm = new PeftModel(model, dev);
        pm.AddAdapter("a", new LoraConfig { R = 2, TargetModulesRegex = "all-linear" }, 1);
        var e = Assert.Throws<PeftException>(() => new Trainer(pm, dev, new TrainerOptions { BatchSize = 2, MaxLength = 12 }));
        Assert.Contains("base weights", e.Message);
        Assert.Contains("--device cpu", e.Message);
    }

    [Theory]
    [InlineData("cpu", false, 0)]
    [InlineData("cuda", true, 0)]
    [InlineData(" CUDA:3 ", true, 3)]
    public void Device_names_parse(string text, bool cuda, int index)
    {
        var d = DeviceName.Parse(text);
        Assert.Equal(cuda, d.IsCuda);
        Assert.Equal(index, d.Index);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    public void Bad_device_names_say_what_is_accepted(string text)
    {
        var e = Assert.Throws<PeftException>(() => DeviceName.Parse(text));
        Assert.Contains("cpu, cuda or cuda:N", e.Message);
        Assert.Throws<PeftException>(() => ComputeContext.CreateCpu(new ComputeOptions { Device = text }));
    }

    [Fact]
    public void CreateCpu_refuses_a_cuda_device()
    {
        var e = Assert.Throws<PeftException>(() => ComputeContext.CreateCpu(new ComputeOptions { Device = "cuda" }));
        Assert.Contains("PeftSharp.Cuda", e.Message);
    }
}
