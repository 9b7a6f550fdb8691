using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft safetensors PATH`: validates a .safetensors file or a model folder (single file or shards) and lists
/// its tensors; for a folder with config.json, also the architecture it describes.</summary>
internal sealed class SafetensorsCommand : ICliCommand
{
    public Command Build()
    {
        var path = new Argument<string>("path") { Description = "a .safetensors file or a model folder" };
        var cmd = new Command("safetensors", "validate and list the tensors of a safetensors file or model folder");
        cmd.Arguments.Add(path);
        cmd.SetAction(pr => CliErrors.Run(() => Run(pr.GetValue(path)!)));
        return cmd;
    }

    static int Run(string path)
    {
        if (Directory.Exists(path))
        {
            string config = Path.Combine(path, "config.json");
            if (File.Exists(config))
            {
                var c = ModelConfig.Load(config);
                Console.WriteLine($"config: {c.ModelType}, {c.NumLayers} layers, hidden {c.HiddenSize}, heads {c.NumHeads}/{c.NumKvHeads} (head_dim {c.HeadDim}), " +
                                  $"vocab {c.VocabSize}, {(c.TieWordEmbeddings ? "tied" : "untied")} embeddings, {c.TorchDtype}");
            }
            using var ckpt = SafetensorsCheckpoint.OpenDirectory(path);
            foreach (var f in ckpt.FilePaths) Console.WriteLine($"file: {f}");
            Print(ckpt.Names.Select(ckpt.Entry).ToList());
        }
        else
        {
            using var f = SafetensorsFile.Open(path);
            foreach (var (k, v) in f.Metadata) Console.WriteLine($"metadata: {k} = {v}");
            Print(f.Entries);
        }
        return 0;
    }

    static void Print(IReadOnlyList<TensorEntry> entries)
    {
        long bytes = 0, elements = 0;
        foreach (var e in entries)
        {
            Console.WriteLine($"{e.Name}\t{e.DType.SafetensorsName()}\t[{string.Join(", ", e.Shape)}]");
            bytes += e.ByteLength;
            elements += PeftSharp.Tensors.Tensor.CountElements(e.Shape);
        }
        Console.WriteLine($"{entries.Count} tensors, {elements:N0} elements, {bytes:N0} bytes");
    }
}
