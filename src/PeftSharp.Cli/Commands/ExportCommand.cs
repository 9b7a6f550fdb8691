using System.CommandLine;
using PeftSharp.Export;
using PeftSharp.IO;
using PeftSharp.IO.Gguf;
using PeftSharp.Templates;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft export gguf &lt;model-dir&gt; --out FILE [--type f32|f16|bf16|q8_0] [--adapter DIR [--merge | --as-lora R]]
/// [--ollama [--base-gguf FILE]]`: a model (optionally with an adapter merged) as a llama.cpp GGUF, or a LoRA adapter
/// as a GGUF adapter; DoRA adapters are merged or approximated by a rank-R LoRA with the error reported.
/// </summary>
internal sealed class ExportCommand : ICliCommand
{
    public Command Build()
    {
        var dir = new Argument<string>("model-dir") { Description = "base model folder (Hugging Face layout; dense or bitsandbytes 4-bit)" };
        var output = new Option<string>("--out") { Description = "the .gguf file to write", Required = true };
        var type = new Option<string>("--type") { Description = "tensor type of the model's matrices: f32, f16, bf16 or q8_0", DefaultValueFactory = _ => "f16" };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT adapter folder: written as a GGUF LoRA adapter, or merged with --merge" };
        var merge = new Option<bool>("--merge") { Description = "with --adapter: write the model with the adapter merged in" };
        var asLora = new Option<int?>("--as-lora") { Description = "with a DoRA adapter: write a rank-R LoRA approximating it (truncated SVD) and report the error" };
        var ollama = new Option<bool>("--ollama") { Description = "also write an Ollama Modelfile next to --out" };
        var baseGguf = new Option<string?>("--base-gguf") { Description = "with --ollama and an adapter: the base model's .gguf for the Modelfile's FROM" };
        var threads = SharedOptions.Threads();
        var gguf = new Command("gguf", "write a llama.cpp GGUF model or LoRA adapter (for llama.cpp, Ollama, LM Studio, LLamaSharp)");
        gguf.Arguments.Add(dir);
        foreach (var o in new Option[] { output, type, adapter, merge, asLora, ollama, baseGguf, threads }) gguf.Options.Add(o);
        gguf.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string modelDir = pr.GetValue(dir)!, outPath = pr.GetValue(output)!;
            string? adapterDir = pr.GetValue(adapter);
            var ggmlType = GgufModelExporter.ParseType(pr.GetValue(type)!);
            if (pr.GetValue(merge) && adapterDir == null) throw new PeftException("--merge needs --adapter");
            if (pr.GetValue(asLora) != null && (adapterDir == null || pr.GetValue(merge))) throw new PeftException("--as-lora needs --adapter (and no --merge)");
            if (GgufModelLoader.IsGguf(modelDir)) throw new PeftException($"{modelDir}: export starts from a Hugging Face model folder, not a GGUF file");
            string tokenizerDir = modelDir;
            using var pm = ModelLoading.Load(compute, modelDir, adapterDir == null ? null : [adapterDir]);
            var model = pm.Model;

            if (adapterDir == null || pr.GetValue(merge))
            {
                var report = GgufModelExporter.Export(model, compute, tokenizerDir, outPath, ggmlType, adapterDir != null ? "default" : null);
                foreach (var n in report.Notes) Console.Error.WriteLine("note: " + n);
                Console.WriteLine($"{(adapterDir != null ? "merged model" : "model")} → {outPath} ({report.Tensors} tensors, {ggmlType}, {report.Bytes / 1048576.0:F1} MiB)");
                if (pr.GetValue(ollama)) WriteModelfile(outPath, Path.GetFileName(outPath), null, modelDir);
                return 0;
            }

            var config = pm.Configs["default"];
            List<LoraFactors> factors;
            if (config.UseDora)
            {
                int rank = pr.GetValue(asLora) ?? throw new PeftException(
                    $"{adapterDir}: a DoRA adapter cannot be a GGUF adapter (llama.cpp has no DoRA); pass --merge, or --as-lora R for a rank-R LoRA approximation");
                var approx = DoraAsLora.Approximate(pm, "default", rank);
                factors = approx.Factors.ToList();
                Console.WriteLine($"DoRA → rank-{rank} LoRA: relative ‖ΔW − ΔW_R‖_F = {approx.RelativeFrobeniusError:E3}, " +
                    $"mean KL(DoRA ‖ LoRA-{rank}) = {approx.MeanKl:E3} nats over {approx.KlPositions} probe positions");
            }
            else
            {
                if (pr.GetValue(asLora) != null) throw new PeftException("--as-lora is for DoRA adapters; this adapter is a plain LoRA");
                factors = GgufAdapterExporter.LoraFactorsOf(pm, "default");
            }
            if (model.GroupQuantization != null)
                Console.Error.WriteLine($"note: the adapter was trained on a {model.GroupQuantization.Method.ToUpperInvariant()} base; export that base with `peft export gguf {modelDir} --out base.gguf` (it is dequantized to --type)");
            if (model.Quantization != null)
                Console.Error.WriteLine($"note: the adapter was trained on a 4-bit base; export that base with `peft export gguf {modelDir} --out base.gguf` (it is dequantized to --type)");
            float alpha = GgufAdapterExporter.Export(factors, model.Config, outPath, Path.GetFileName(Path.GetFullPath(adapterDir)));
            Console.WriteLine($"LoRA adapter → {outPath} ({factors.Count} modules, rank {factors.Max(f => f.Rank)}, adapter.lora.alpha {alpha})");
            if (pr.GetValue(ollama))
            {
                string from = pr.GetValue(baseGguf) ?? throw new PeftException("--ollama with an adapter needs --base-gguf FILE (the base model's GGUF for FROM)");
                WriteModelfile(outPath, from, Path.GetFileName(outPath), modelDir);
            }
            return 0;
        }));
        var cmd = new Command("export", "export to other runtimes' formats");
        cmd.Subcommands.Add(gguf);
        return cmd;
    }

    static void WriteModelfile(string outPath, string from, string? adapterFile, string modelDir)
    {
        var chat = ChatTemplateSource.TryLoad(modelDir);
        var mf = OllamaModelfile.Build(from, adapterFile, chat?.Source, chat?.EosToken);
        string path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!, "Modelfile");
        AtomicFile.WriteAllText(path, mf.Text);
        Console.WriteLine($"Ollama Modelfile → {path}" + (mf.HasTemplate ? $" (TEMPLATE: {mf.Family})"
            : chat == null ? " (the model has no chat template: no TEMPLATE)" : " (the chat template is not a known family: no TEMPLATE; Ollama will read the GGUF's)"));
    }
}
