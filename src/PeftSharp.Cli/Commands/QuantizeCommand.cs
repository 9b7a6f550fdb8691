using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Quantization;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft quantize &lt;model-dir&gt; --to nf4|fp4 [--double-quant] [--blocksize 64] --out dir`: a bitsandbytes-format 4-bit
/// checkpoint (the decoder projections quantized while loading, tensor by tensor; embeddings, norms and lm_head kept
/// in their dtype) with transformers' quantization_config, readable by our loader and by transformers + bitsandbytes.
/// </summary>
internal sealed class QuantizeCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument("dense (BF16/F16/F32) Hugging Face model folder");
        var to = new Option<string>("--to") { Description = "nf4 or fp4", DefaultValueFactory = _ => "nf4" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "quantize the absmax values too (≈4.127 instead of 4.5 bits/parameter)" };
        var blockSize = new Option<int>("--blocksize") { Description = "elements per absmax block", DefaultValueFactory = _ => 64 };
        var output = new Option<string>("--out") { Description = "output model folder", Required = true };
        var threads = SharedOptions.Threads();
        var cmd = new Command("quantize", "write a bitsandbytes-format 4-bit (NF4/FP4) checkpoint");
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { to, doubleQuant, blockSize, output, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string src = ModelLocator.Value(pr, dir), dst = pr.GetValue(output)!;
            if (Path.GetFullPath(src) == Path.GetFullPath(dst)) throw new PeftException("--out must be a different folder than the model");
            var options = QuantizeOptions.Parse(pr.GetValue(to)!, pr.GetValue(doubleQuant), pr.GetValue(blockSize), "--to/--blocksize");
            using var model = CausalLM.Load(src, options, compute);
            if (model.Quantization?.PreQuantized == true) throw new PeftException($"{src}: already a bitsandbytes 4-bit checkpoint");
            if (model.GroupQuantization is { } g)
                throw new PeftException($"{src}: a {g.Method.ToUpperInvariant()} checkpoint; its projections are already packed ({g.Scheme}) — train over it as it is, or merge to BF16 first");
            double loadPeak = BenchUtil.PeakRssMb();
            HfCheckpoint.Write(dst, model, src, BenchUtil.ParseDType(model.Config.TorchDtype switch { "bfloat16" => "bf16", "float16" => "f16", _ => "f32" }));
            using var ckpt = SafetensorsCheckpoint.OpenDirectory(dst);
            Console.WriteLine($"{model.Quantization}");
            Console.WriteLine(QuantizedFileStats.Measure(ckpt, dst));
            Console.WriteLine($"peak RSS while loading {loadPeak:F0} MB → {dst}");
            return 0;
        }));
        return cmd;
    }
}
