using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Models;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft init-model --config c.json --out dir`: a model folder with seeded random weights (to pretrain from).</summary>
internal sealed class InitModelCommand : ICliCommand
{
    public Command Build()
    {
        var config = new Option<string>("--config") { Description = "HF config.json giving the architecture", Required = true };
        var output = new Option<string>("--out") { Required = true };
        var dtype = new Option<string>("--dtype") { DefaultValueFactory = _ => "f32" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1UL };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder whose tokenizer files are copied in" };
        var cmd = new Command("init-model", "write a model folder with random weights of a config's shape");
        foreach (var o in new Option[] { config, output, dtype, seed, tokenizer }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            var c = ModelConfig.Load(pr.GetValue(config)!);
            var dt = BenchUtil.ParseDType(pr.GetValue(dtype)!);
            using var model = CausalLM.CreateRandom(c, dt, pr.GetValue(seed));
            HfCheckpoint.Write(pr.GetValue(output)!, model, pr.GetValue(tokenizer), dt);
            Console.WriteLine($"{model.NamedWeights().Sum(w => w.Tensor.ElementCount):N0} parameters → {pr.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
