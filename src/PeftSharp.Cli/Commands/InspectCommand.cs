using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Quantization;
using PeftSharp.Inspection;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft inspect &lt;model-dir&gt;`: architecture, parameter counts by module kind, dtypes, bytes.</summary>
internal sealed class InspectCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument("Hugging Face model folder (config.json + *.safetensors)");
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var cmd = new Command("inspect", "show a model's architecture, parameter counts, dtypes and memory");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(json);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var model = CausalLM.Load(ModelLocator.Value(pr, dir));
            ModelReport report;
            using (var files = SafetensorsCheckpoint.OpenDirectory(ModelLocator.Value(pr, dir)))
                report = ModelReport.Of(model, name => files.Contains(name) ? files.Entry(name).DType : null);
            if (pr.GetValue(json))
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(report.ToJson())!.AsObject();
                if (model.Quantization != null)
                {
                    using var ckpt = SafetensorsCheckpoint.OpenDirectory(ModelLocator.Value(pr, dir));
                    var stats = QuantizedFileStats.Measure(ckpt, ModelLocator.Value(pr, dir));
                    node["quantization"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["type"] = model.Quantization.Options.Type.BnbName(), ["double_quant"] = model.Quantization.Options.DoubleQuant,
                        ["quantized_modules"] = stats.Modules, ["quantized_parameters"] = stats.Parameters,
                        ["bits_per_parameter"] = Math.Round(stats.BitsPerParameter, 4),
                        ["bits_per_parameter_with_maps"] = Math.Round(stats.BitsPerParameterWithMaps, 4),
                        ["unquantized"] = new System.Text.Json.Nodes.JsonArray(model.Quantization.UnquantizedModules.Select(u => (System.Text.Json.Nodes.JsonNode)u!).ToArray()),
                    };
                }
                if (model.GroupQuantization is { } g)
                    node["quantization"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["method"] = g.Method, ["bits"] = g.Bits, ["group_size"] = g.GroupSize, ["desc_act"] = g.DescAct, ["sym"] = g.Sym,
                        ["checkpoint_format"] = g.CheckpointFormat, ["scheme"] = g.Scheme,
                        ["quantized_modules"] = g.QuantizedModules, ["permuted_modules"] = g.PermutedModules,
                        ["quantized_parameters"] = model.PackedProjections().Sum(p => p.Weight.ElementCount),
                        ["bits_per_parameter"] = Math.Round(g.BitsPerParameter, 4),
                        ["unquantized"] = new System.Text.Json.Nodes.JsonArray(g.UnquantizedModules.Select(u => (System.Text.Json.Nodes.JsonNode)u!).ToArray()),
                    };
                Console.WriteLine(node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                Console.WriteLine(report.ToText());
                if (model.Quantization != null)
                {
                    using var ckpt = SafetensorsCheckpoint.OpenDirectory(ModelLocator.Value(pr, dir));
                    Console.WriteLine($"quantization  {model.Quantization}");
                    Console.WriteLine($"              {QuantizedFileStats.Measure(ckpt, ModelLocator.Value(pr, dir))}");
                }
                if (model.GroupQuantization is { } g)
                    Console.WriteLine($"quantization  {g}");
            }
            return 0;
        }));
        return cmd;
    }
}
