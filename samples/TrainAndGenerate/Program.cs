// Load a model, add a LoRA adapter, train it on examples held in memory, save it in PEFT's format, generate.
// Usage: dotnet run --project samples/TrainAndGenerate -- [model-dir] [adapter-out-dir] [seed]
using System.Text.Json;
using PeftSharp.Compute;
using PeftSharp.Data;
using PeftSharp.Inference;
using PeftSharp.Peft;
using PeftSharp.Training;

string modelDir = args.Length > 0 ? args[0] : "assets/default-model";
string outDir = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "peftsharp-sample-adapter");
int seed = args.Length > 2 ? int.Parse(args[2]) : 42;

// The examples: any sequence of TrainingExample (here the demo task's verses, "Verse: …\nTestament:" → " Old Testament").
var examples = File.ReadLines(Path.Combine(modelDir, "..", "demo", "train.jsonl"))
    .Select(line => JsonDocument.Parse(line).RootElement)
    .Select(r => TrainingExample.FromPromptCompletion(r.GetProperty("prompt").GetString()!, r.GetProperty("completion").GetString()!))
    .Take(256)
    .ToList();

using var compute = ComputeContext.CreateCpu();                    // all cores, the widest SIMD this CPU has
using var model = PeftModel.Load(modelDir, compute);               // config.json, *.safetensors, tokenizer, chat template
model.AddAdapter("verses", new LoraConfig { R = 16, LoraAlpha = 32, TargetModulesRegex = "all-linear" }, seed: (ulong)seed);

var options = new TrainerOptions { MaxSteps = 60, LearningRate = 3e-3, BatchSize = 8, MaxLength = 128, WarmupSteps = 5, Seed = seed };
using (var trainer = new Trainer(model, compute, options))
{
    var result = trainer.Train(examples, observer: new Progress());
    Console.WriteLine($"trained {result.Steps} steps: loss {result.FinalLoss:F3}, {result.MeanTokensPerSecond:F0} tokens/s");
}
model.Save(outDir, "verses");                                      // adapter_config.json + adapter_model.safetensors
Console.WriteLine($"adapter saved to {outDir}");

var generator = new TextGenerator(model, compute);
var prompt = "Verse: And God said, Let there be light: and there was light.\nTestament:";
var gen = new GenerationOptions { MaxNewTokens = 8, Stop = ["\n"] };
Console.WriteLine($"base:    {generator.Complete(prompt, adapter: null, gen).Trim()}");
Console.WriteLine($"adapter: {generator.Complete(prompt, adapter: "verses", gen).Trim()}");

/// <summary>Prints every 20th step.</summary>
sealed class Progress : ITrainingObserver
{
    public void OnStart(TrainingPlan plan) => Console.WriteLine($"training {plan.TrainableParameters:N0} of {plan.TotalParameters:N0} parameters");
    public void OnStep(StepMetrics m) { if (m.Step % 20 == 0) Console.WriteLine($"step {m.Step}/{m.TotalSteps}: loss {m.Loss:F3}"); }
    public void OnEval(EvalMetrics m) { }
    public void OnMessage(string message) => Console.WriteLine(message);
}
