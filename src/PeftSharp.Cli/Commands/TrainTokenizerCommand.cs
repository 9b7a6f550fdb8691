using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Tokenization;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft train-tokenizer --corpus text.txt --vocab-size 2048 --out dir`: a byte-level BPE in HF format.</summary>
internal sealed class TrainTokenizerCommand : ICliCommand
{
    public Command Build()
    {
        var corpus = new Option<string>("--corpus") { Description = "UTF-8 text file (paragraphs separated by blank lines)", Required = true };
        var vocab = new Option<int>("--vocab-size") { DefaultValueFactory = _ => 2048 };
        var output = new Option<string>("--out") { Description = "folder for tokenizer.json and tokenizer_config.json", Required = true };
        var maxLength = new Option<int>("--model-max-length") { DefaultValueFactory = _ => 512 };
        var cmd = new Command("train-tokenizer", "train a byte-level BPE tokenizer (Hugging Face tokenizer.json) on a text file");
        foreach (var o in new Option[] { corpus, vocab, output, maxLength }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            var path = pr.GetValue(corpus)!;
            if (!File.Exists(path)) throw new PeftException($"--corpus: file '{path}' not found");
            const string bos = "<s>", eos = "</s>";
            var result = BpeTrainer.Train(File.ReadLines(path), pr.GetValue(vocab), [bos, eos]);
            var dir = pr.GetValue(output)!;
            Directory.CreateDirectory(dir);
            AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer.json"), BpeTrainer.ToTokenizerJson(result, bos, eos));
            AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), BpeTrainer.ToTokenizerConfigJson(bos, eos, pr.GetValue(maxLength)));
            Console.WriteLine($"{result.Vocab.Count} tokens ({result.Merges.Count} merges) → {dir}");
            return 0;
        }));
        return cmd;
    }
}
