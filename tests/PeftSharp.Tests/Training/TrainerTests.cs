using System.Text.Json.Nodes;
using PeftSharp.Peft;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Training;

namespace PeftSharp.Tests.Training;

public class TrainerTests
{
    static readonly string Model = TinyRun.ModelDir();
    static readonly string DataFile = TinyRun.Data();

    static TrainingOptions Options(string output, string method = "lora") => new()
    {
        ModelDir = Model, DataFile = DataFile, OutputDir = output, Method = method,
        Lora = new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", LoraDropout = 0.1 },
        LearningRate = 1e-2, MaxSteps = 6, BatchSize = 2, MaxLength = 32, EvalSteps = 3, SaveSteps = 3,
        WarmupSteps = 1, LrScheduler = "cosine", EvalFraction = 0.1, Seed = 5,
    };

    static List<double> Losses(string output) => File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))
        .Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] != null).Select(n => (double)n["loss"]!).ToList();

    [Theory]
    [InlineData("lora")]
    [InlineData("dora")]
    [InlineData("full")]
    public void Resume_ContinuesTheSameLossCurve(string method)
    {
        var straight = TinyRun.Temp("run");
        using (var t = new TrainingRun(Options(straight, method), TestCompute.Cpu)) t.Run();
        var expected = Losses(straight);
        Assert.Equal(6, expected.Count);

        var interrupted = TinyRun.Temp("run");
        using (var cts = new CancellationTokenSource())
        using (var t = new TrainingRun(Options(interrupted, method), TestCompute.Cpu, new StopAfter(3, cts)))
            Assert.ThrowsAny<OperationCanceledException>(() => t.Run(cts.Token));
        Assert.True(Directory.Exists(Path.Combine(interrupted, "checkpoints", "step-000003")));
        using (var t = new TrainingRun(Options(interrupted, method) with { ResumeFrom = "latest" }, TestCompute.Cpu)) t.Run();
        Assert.Equal(expected, Losses(interrupted));   // bit-identical, same seed and threads
    }

    sealed class StopAfter(int step, CancellationTokenSource cts) : ITrainingObserver
    {
        public void OnStart(TrainingPlan plan) { }
        public void OnStep(StepMetrics m) { if (m.Step == step) cts.Cancel(); }
        public void OnEval(EvalMetrics m) { }
        public void OnMessage(string message) { }
    }

    [Fact]
    public void NonFiniteLoss_StopsWithClearMessage_AndKeepsLastCheckpoint()
    {
        var output = TinyRun.Temp("run");
        using var t = new TrainingRun(Options(output) with { SaveSteps = 2 }, TestCompute.Cpu);
        t.BeforeStep = (step, ps) => { if (step == 4) ps[0].Value.Floats[0] = float.NaN; };
        var e = Assert.Throws<PeftException>(() => t.Run());
        Assert.Contains("step 5", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.Contains("step-000004", e.Message);
        var checkpoints = Checkpoint.List(Path.Combine(output, "checkpoints"));
        Assert.EndsWith("step-000004", checkpoints[^1]);
        Assert.True(File.Exists(Path.Combine(checkpoints[^1], "adapter_model.safetensors")));
    }

    [Fact]
    public void GradientAccumulation_IsTokenWeightedLikeOneBigBatch()
    {
        var a = TinyRun.Temp("run");
        var b = TinyRun.Temp("run");
        using (var t = new TrainingRun(Options(a) with { MaxSteps = 1, BatchSize = 4, Lora = Options(a).Lora with { LoraDropout = 0 } }, TestCompute.Cpu)) t.Run();
        using (var t = new TrainingRun(Options(b) with { MaxSteps = 1, BatchSize = 2, GradientAccumulationSteps = 2, Lora = Options(b).Lora with { LoraDropout = 0 } }, TestCompute.Cpu)) t.Run();
        double Grad(string o) => File.ReadAllLines(Path.Combine(o, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .First(n => n["grad_norm"] != null)["grad_norm"]!.GetValue<double>();
        Assert.Equal(Losses(a)[0], Losses(b)[0], 1e-5);
        Assert.Equal(Grad(a), Grad(b), 1e-4);
    }

    [Fact]
    public void Training_LowersEvalLoss_AndWritesPeftAdapterAndSummary()
    {
        var output = TinyRun.Temp("run");
        TrainingResult r;
        using (var t = new TrainingRun(Options(output) with { MaxSteps = 30, EvalSteps = 30, SaveSteps = 30, LearningRate = 2e-2 }, TestCompute.Cpu)) r = t.Run();
        Assert.True(r.FinalEval!.Loss < r.FirstEval!.Loss - 0.05, $"eval loss {r.FirstEval.Loss} → {r.FinalEval.Loss}");
        Assert.True(File.Exists(Path.Combine(output, "adapter", "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(output, "summary.json")));
        Assert.True(r.Memory.TrainableBytes > 0 && r.Memory.OptimizerBytes >= 2 * r.Memory.TrainableBytes, $"optimizer {r.Memory.OptimizerBytes} B for {r.Memory.TrainableBytes} B of parameters");
    }

    [Fact]
    public void BadOptions_AreClearErrors()
    {
        Assert.Contains("method", Assert.Throws<PeftException>(() => new TrainingRun(Options(TinyRun.Temp("x"), "lorax"), TestCompute.Cpu)).Message);
        Assert.Contains("does not exist", Assert.Throws<PeftException>(() => new TrainingRun(Options(TinyRun.Temp("x")) with { ModelDir = "/nonexistent" }, TestCompute.Cpu)).Message);
        Assert.Contains("lr_scheduler_type", Assert.Throws<PeftException>(() => new TrainingRun(Options(TinyRun.Temp("x")) with { LrScheduler = "step" }, TestCompute.Cpu)).Message);
    }
}
