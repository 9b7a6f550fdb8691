using System.Text.Json;
using PeftSharp.Cli.Comparison;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Tensors;
using PeftSharp.Tokenization;
using PeftSharp.Training;

namespace PeftSharp.Tests.Comparison;

/// <summary>Synthetic comparison results, method folders as `peft train` leaves them, and a tiny real model folder.</summary>
internal static class ComparisonFixtures
{
    public static string TempDir(string tag)
    {
        var d = Path.Combine(Path.GetTempPath(), $"peftsharp-{tag}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>A plausible result for one method; the numbers follow the method (quantized: less frozen memory, slower).</summary>
    public static MethodResult Result(string method, double evalLoss, double peakRssMb, double tokensPerSecond, double? exactMatch = null,
        MethodStatus status = MethodStatus.Trained)
    {
        var curve = Enumerable.Range(1, 20).Select(s => new CurvePoint(s, evalLoss + 2.0 / s)).ToList();
        return new MethodResult
        {
            Method = method, Status = status, LearningRate = method == "full" ? 1e-4 : 2e-4,
            Steps = 20, TrainableParameters = method == "full" ? 1_000_000 : 20_000, TotalParameters = method == "full" ? 1_000_000 : 1_020_000,
            FrozenWeightBytes = method switch { "full" => 0, "qlora" or "qdora" => 600_000, _ => 4_000_000 },
            PeakRssMib = peakRssMb, TokensPerSecond = tokensPerSecond, WallSeconds = 12.5, FinalTrainLoss = evalLoss - 0.1,
            EvalLossBefore = evalLoss + 1, EvalLoss = evalLoss, EvalPerplexity = Math.Exp(evalLoss),
            ExactMatchBefore = exactMatch != null ? 0.0 : null, ExactMatch = exactMatch, SavedBytes = 80_000, TrainLoss = curve,
            EvalLossCurve = [new CurvePoint(0, evalLoss + 1), new CurvePoint(20, evalLoss)], Seeds = [42],
        };
    }

    public static MethodResult Failed(string method, string error) => new()
    {
        Method = method, Status = MethodStatus.Failed, LearningRate = 2e-4, Error = error,
    };

    public static ComparisonSettings Settings(string outDir, string dataFile, string modelDir, params string[] methods) => new()
    {
        ModelDir = modelDir, DataFile = dataFile, OutputDir = outDir, MaxSteps = 3, Threads = 1, TaskEval = 0,
        Methods = methods.Length > 0 ? methods : ComparisonSettings.DefaultMethods,
    };

    public static ComparisonReport Report(IReadOnlyList<MethodResult> results, ComparisonSettings? settings = null)
    {
        settings ??= new ComparisonSettings { ModelDir = "m", DataFile = "d.jsonl", OutputDir = "out", Methods = results.Select(r => r.Method).ToList() };
        return new ComparisonReport
        {
            Settings = settings, Results = results, Runs = results, Claims = SeedClaims.Evaluate(results),
            CreatedUtc = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), Machine = "test machine",
        };
    }

    /// <summary>The five default methods with seed-like behaviour, plus qdora failed.</summary>
    public static ComparisonReport TypicalReport() => Report([
        Result("full", 1.90, 400, 900, 0.50),
        Result("lora", 2.00, 300, 1000, 0.45),
        Result("dora", 1.95, 310, 800, 0.47),
        Result("qlora", 2.02, 200, 700, 0.44),
        Failed("qdora", "error: method \"qdora\" is not supported <expected lora, dora or full> & more"),
    ]);

    /// <summary>Writes what `peft train` leaves in its output folder: summary.json (serialized like the trainer),
    /// metrics.jsonl, evaluation.json and an adapter folder.</summary>
    public static void WriteFinishedRun(string methodDir, double finalLoss = 2.5, double peakRssMb = 123.4)
    {
        Directory.CreateDirectory(methodDir);
        string adapter = Path.Combine(methodDir, "adapter");
        Directory.CreateDirectory(adapter);
        File.WriteAllBytes(Path.Combine(adapter, "adapter_model.safetensors"), new byte[1000]);
        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), "{}");
        var result = new TrainingResult(3, finalLoss, new EvalMetrics(0, 3.0, Math.Exp(3.0), 100), new EvalMetrics(3, 2.6, Math.Exp(2.6), 100),
            adapter, 4.5, 1500, new MemoryReport(40_000, 2_000, 2_000, 4_000, 10_000, peakRssMb), 500, 10_500);
        File.WriteAllText(Path.Combine(methodDir, "summary.json"), JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(methodDir, "metrics.jsonl"),
            "{\"step\":0,\"eval_loss\":3.0,\"eval_ppl\":20.08}\n" +
            "{\"step\":1,\"loss\":3.1,\"lr\":0.0002,\"grad_norm\":1.2,\"tokens_per_s\":1400,\"step_ms\":10,\"rss_mb\":100,\"epoch\":0}\n" +
            "{\"step\":2,\"loss\":2.8,\"lr\":0.0001,\"grad_norm\":1.1,\"tokens_per_s\":1500,\"step_ms\":10,\"rss_mb\":100,\"epoch\":0}\n" +
            "{\"step\":3,\"loss\":" + finalLoss.ToString(System.Globalization.CultureInfo.InvariantCulture) + ",\"lr\":0,\"grad_norm\":1,\"tokens_per_s\":1600,\"step_ms\":10,\"rss_mb\":100,\"epoch\":0}\n" +
            "{\"step\":3,\"eval_loss\":2.6,\"eval_ppl\":13.46}\n");
        File.WriteAllText(Path.Combine(methodDir, "evaluation.json"), "{\"exact_match_before\":0.25,\"exact_match_after\":0.5}");
    }

    public static string WriteDataFile(string dir)
    {
        string path = Path.Combine(dir, "train.jsonl");
        var lines = Enumerable.Range(0, 24).Select(i =>
            JsonSerializer.Serialize(new { prompt = $"Question {i}: what is {i} plus one?\nAnswer:", completion = $" {i + 1}" }));
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>A real (tiny, random) Llama model folder with a byte-level BPE tokenizer trained on the data file.</summary>
    public static string WriteTinyModel(string dir, string dataFile)
    {
        string tok = Path.Combine(dir, "tokenizer");
        Directory.CreateDirectory(tok);
        var texts = File.ReadAllLines(dataFile).Select(l => JsonDocument.Parse(l).RootElement).Select(e => e.GetProperty("prompt").GetString() + e.GetProperty("completion").GetString());
        var bpe = BpeTrainer.Train(texts, 300, ["<s>", "</s>"]);
        File.WriteAllText(Path.Combine(tok, "tokenizer.json"), BpeTrainer.ToTokenizerJson(bpe, "<s>", "</s>"));
        File.WriteAllText(Path.Combine(tok, "tokenizer_config.json"), BpeTrainer.ToTokenizerConfigJson("<s>", "</s>", 128));
        string configJson = $$"""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": {{bpe.Vocab.Count}}, "hidden_size": 32,
             "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 128, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true,
             "bos_token_id": 0, "eos_token_id": 1, "hidden_act": "silu", "torch_dtype": "float32"}
            """;
        var config = ModelConfig.Parse(configJson, "test config");
        string modelDir = Path.Combine(dir, "model");
        using var model = CausalLM.CreateRandom(config, DType.F32, 7);
        HfCheckpoint.Write(modelDir, model, tok, DType.F32);
        return modelDir;
    }
}
