using System.CommandLine;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tokenization;

namespace PeftSharp.Cli;

/// <summary>Loads a model folder with optional PEFT adapters and its tokenizer, reporting adapter load problems.</summary>
internal static class ModelLoading
{
    public static PeftModel Load(PeftSharp.Compute.ComputeContext compute, string dir, IReadOnlyList<string>? adapters, QuantizeOptions? quantize = null)
    {
        var pm = new PeftModel(CausalLM.Load(dir, quantize, compute), compute,
            File.Exists(Path.Combine(dir, "tokenizer.json")) ? HfTokenizer.Load(dir) : null, PeftSharp.Templates.ChatTemplateSource.TryLoad(dir));
        if (pm.Model.Quantization != null) Console.Error.WriteLine($"base: {pm.Model.Quantization}");
        if (pm.Model.GroupQuantization != null) Console.Error.WriteLine($"base: {pm.Model.GroupQuantization}");
        try
        {
            foreach (var (path, i) in (adapters ?? []).Select((p, i) => (p, i)))
            {
                var name = adapters!.Count == 1 ? "default" : $"adapter{i}";
                var report = pm.LoadAdapter(ModelLocator.Resolve(path), name);
                if (report.Missing.Count > 0)
                    Console.Error.WriteLine($"warning: {path}: {report.Missing.Count} adapter tensors missing (left at their initial values), e.g. {report.Missing[0]}");
                if (report.Unexpected.Count > 0)
                    Console.Error.WriteLine($"warning: {path}: {report.Unexpected.Count} unexpected tensors ignored, e.g. {report.Unexpected[0]}");
            }
            return pm;
        }
        catch
        {
            pm.Dispose();
            throw;
        }
    }

    /// <summary>`--quantize nf4|fp4` (load-time 4-bit quantization of the decoder projections) and `--double-quant`.</summary>
    public static (Option<string?> Type, Option<bool> DoubleQuant) QuantizeOptions() =>
        (new Option<string?>("--quantize") { Description = "quantize the linear projections to 4 bits while loading: nf4 or fp4" },
         new Option<bool>("--double-quant") { Description = "with --quantize: also quantize the absmax values" });

    public static QuantizeOptions? ParseQuantize(System.CommandLine.ParseResult pr, (Option<string?> Type, Option<bool> DoubleQuant) o) =>
        pr.GetValue(o.Type) is { } t ? PeftSharp.Quantization.QuantizeOptions.Parse(t, pr.GetValue(o.DoubleQuant)) : null;

    /// <summary>The tokenizer in the model folder (tokenizer.json), or a clear error.</summary>
    public static HfTokenizer Tokenizer(string dir)
    {
        if (PeftSharp.IO.Gguf.GgufModelLoader.IsGguf(dir)) return HfTokenizer.Load(dir);
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new PeftException($"{dir}: no tokenizer.json; pass token ids with --ids instead of text");
        var tokenizer = HfTokenizer.Load(dir);
        string config = Path.Combine(dir, "config.json");
        if (File.Exists(config)) tokenizer.CheckFitsModel(ModelConfig.Load(config).VocabSize, config);
        return tokenizer;
    }
}
