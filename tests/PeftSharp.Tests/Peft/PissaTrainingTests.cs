using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Training;

namespace PeftSharp.Tests.Peft;

/// <summary>`peft train` with init_lora_weights=pissa and with bias modes, end to end on a tiny model.</summary>
public class PissaTrainingTests
{
    static readonly string Llama = TinyRun.ModelDir();
    static readonly string Qwen = TinyRun.ModelDir("qwen2");
    static readonly string DataFile = TinyRun.Data();

    static TrainingOptions Options(string model, string output, LoraConfig lora) => new()
    {
        ModelDir = model, DataFile = DataFile, OutputDir = output, Method = "lora", Lora = lora,
        LearningRate = 1e-2, MaxSteps = 4, BatchSize = 2, MaxLength = 32, EvalSteps = 0, SaveSteps = 2,
        WarmupSteps = 0, LrScheduler = "constant", EvalFraction = 0.1, Seed = 5,
    };

    static List<double> Losses(string output) => File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))
        .Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] != null).Select(n => (double)n["loss"]!).ToList();

    static readonly int[] Ids = [0, 5, 9, 33, 2, 17, 40, 8];

    static float[] Logits(PeftModel m)
    {
        var all = new float[Ids.Length * m.Model.Config.VocabSize];
        using var s = Passes.Session(m, Ids.Length);
        s.Feed(Ids, Span<float>.Empty, all);
        return all;
    }

    [Fact]
    public void PissaRun_StartsFromTheBaseModel_AndItsAdapterReproducesTheTrainedModelOnTheOriginalBase()
    {
        var lora = new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", InitLoraWeights = "pissa" };
        var plainDir = TinyRun.Temp("run");
        using (var t = new TrainingRun(Options(Llama, plainDir, lora with { InitLoraWeights = "true" }), TestCompute.Cpu)) t.Run();

        var dir = TinyRun.Temp("run");
        float[] trained;
        TrainingResult result;
        using (var t = new TrainingRun(Options(Llama, dir, lora), TestCompute.Cpu))
        {
            result = t.Run();
            trained = Logits(t.Model);
        }
        // Step 1's loss is the base model's loss in both runs: PiSSA does not change the model at init.
        Assert.Equal(Losses(plainDir)[0], Losses(dir)[0], 4);
        Assert.NotEqual(Losses(plainDir)[^1], Losses(dir)[^1]);

        var cfg = LoraConfig.Load(Path.Combine(result.AdapterDir!, "adapter_config.json"));
        Assert.Equal(8, cfg.R);
        Assert.Equal("true", cfg.InitLoraWeights);
        using var fresh = new PeftModel(CausalLM.Load(Llama), TestCompute.Cpu);
        fresh.LoadAdapter(result.AdapterDir!);
        double e = Numerics.RelativeError(Logits(fresh), trained.Select(x => (double)x).ToArray());
        Assert.True(e < 1e-4, $"saved PiSSA adapter on the original base vs the trained model: {e:E2}");
    }

    [Theory]
    [InlineData("pissa", "llama")]
    [InlineData("true", "qwen2")]
    public void Resume_ContinuesTheSameLossCurve(string init, string type)
    {
        var lora = new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj", "v_proj", "down_proj"], InitLoraWeights = init, Bias = type == "qwen2" ? "all" : "none" };
        string model = type == "qwen2" ? Qwen : Llama;
        var straight = TinyRun.Temp("run");
        using (var t = new TrainingRun(Options(model, straight, lora), TestCompute.Cpu))
        {
            t.Run();
            if (type == "qwen2") Assert.Contains(t.Model.TrainableParameters(), p => p.Name.EndsWith("k_proj.bias"));
        }
        var interrupted = TinyRun.Temp("run");
        using (var cts = new CancellationTokenSource())
        using (var t = new TrainingRun(Options(model, interrupted, lora), TestCompute.Cpu, new StopAfter(2, cts)))
            Assert.ThrowsAny<OperationCanceledException>(() => t.Run(cts.Token));
        using (var t = new TrainingRun(Options(model, interrupted, lora) with { ResumeFrom = "latest" }, TestCompute.Cpu)) t.Run();
        Assert.Equal(Losses(straight), Losses(interrupted));
    }

    sealed class StopAfter(int step, CancellationTokenSource cts) : ITrainingObserver
    {
        public void OnStart(TrainingPlan plan) { }
        public void OnStep(StepMetrics m) { if (m.Step == step) cts.Cancel(); }
        public void OnEval(EvalMetrics m) { }
        public void OnMessage(string message) { }
    }
}
