using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Quantization;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft merge &lt;model-dir&gt; --adapter dir --out dir [--into bf16|4bit] [--dtype bf16|f16|f32]`: writes a full
/// checkpoint with the adapter merged into the base weights, and reports the merged error (max relative logit
/// difference to the unmerged model on a probe sequence). Merging into the dense base is the recommended path; into a
/// 4-bit base the weights are dequantized, the delta added and the result re-quantized (a second rounding).
/// </summary>
internal sealed class MergeCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument("base model folder (dense, a bitsandbytes 4-bit, GPTQ or AWQ checkpoint)");
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder", Required = true };
        var output = new Option<string>("--out") { Description = "output model folder", Required = true };
        var into = new Option<string>("--into")
        {
            Description = "bf16: the dense base (recommended); 4bit: a 4-bit base (quantized at load unless it already is). Default: the base's own storage",
        };
        var dtype = new Option<string?>("--dtype") { Description = "dtype of the dense tensors written (bf16, f16, f32; default: the base's torch_dtype)" };
        var quantType = new Option<string>("--quant-type") { Description = "with --into 4bit on a dense base: nf4 or fp4", DefaultValueFactory = _ => "nf4" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "with --into 4bit on a dense base: double quantization" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("merge", "merge a LoRA/DoRA adapter into the base weights and write a full checkpoint");
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { adapter, output, into, dtype, quantType, doubleQuant, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string modelDir = ModelLocator.Value(pr, dir);
            string? target = pr.GetValue(into)?.Trim().ToLowerInvariant();
            if (target is not (null or "bf16" or "dense" or "4bit"))
                throw new PeftException($"--into: expected bf16 or 4bit, got '{pr.GetValue(into)}'");
            var quantize = target == "4bit" ? QuantizeOptions.Parse(pr.GetValue(quantType)!, pr.GetValue(doubleQuant), 64, "--quant-type") : null;
            var model = CausalLM.Load(modelDir, quantize, compute);
            using var pm = new PeftModel(model, compute);
            if (model.Quantization != null && target is "bf16" or "dense")
                throw new PeftException($"{modelDir}: the base is a 4-bit checkpoint; merge into the BF16 base by passing that folder, or use --into 4bit");
            if (model.GroupQuantization is { } packed)
            {
                if (target == "4bit")
                    throw new PeftException($"{modelDir}: the base is a {packed.Method.ToUpperInvariant()} checkpoint; it merges into BF16 only " +
                                            "(re-packing needs GPTQ/AWQ calibration): drop --into 4bit");
                Console.Error.WriteLine($"base: {packed}; merged weights are dequant(W) + ΔW, written dense");
            }
            var report = pm.LoadAdapter(pr.GetValue(adapter)!, "default");
            if (report.Missing.Count > 0)
                throw new PeftException($"{pr.GetValue(adapter)}: {report.Missing.Count} adapter tensors missing, e.g. {report.Missing[0]}; refusing to merge a partial adapter");
            if (report.Unexpected.Count > 0)
                Console.Error.WriteLine($"warning: {pr.GetValue(adapter)}: {report.Unexpected.Count} adapter tensors match no targeted module " +
                                        $"and are not merged, e.g. {report.Unexpected[0]}");
            if (model.Quantization != null)
            {
                Console.Error.WriteLine($"base: {model.Quantization}");
                Console.Error.WriteLine("warning: " + MergeResult.QuantizedWarning);
            }
            var result = AdapterMerge.MergeActive(pm);
            var outDtype = pr.GetValue(dtype) is { } d ? BenchUtil.ParseDType(d) : BenchUtil.ParseDType(TorchDtypeFlag(model.Config.TorchDtype));
            HfCheckpoint.Write(pr.GetValue(output)!, model, modelDir, outDtype, compute: compute);
            Console.WriteLine($"merged {pm.LoraModules.Count(m => m.IsMerged("default"))} modules into the " +
                $"{(result.IntoQuantizedBase ? "4-bit" : model.GroupQuantization != null ? "dequantized " + model.GroupQuantization.Method.ToUpperInvariant() : "dense")} base → {pr.GetValue(output)}");
            Console.WriteLine($"merged error: max relative logit difference {result.MaxRelativeLogitDifference:E2} on a {AdapterMerge.ProbeIds(model.Config.VocabSize).Length}-token probe" +
                (result.IntoQuantizedBase ? $"; max weight re-quantization error {result.MaxRequantizationError:E2}" : ""));
            return 0;
        }));
        return cmd;
    }

    static string TorchDtypeFlag(string torchDtype) => torchDtype switch
    {
        "bfloat16" => "bf16",
        "float16" => "f16",
        _ => "f32",
    };
}
