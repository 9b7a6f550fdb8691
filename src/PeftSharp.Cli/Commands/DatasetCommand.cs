using System.CommandLine;
using PeftSharp.Data;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft dataset FILE`: validates a training file (format, every record) without a model.</summary>
internal sealed class DatasetCommand : ICliCommand
{
    public Command Build()
    {
        var file = new Argument<string>("file") { Description = "a .jsonl or .json training file" };
        var format = new Option<string>("--format") { Description = "auto, text, prompt_completion, messages or alpaca", DefaultValueFactory = _ => "auto" };
        var skip = new Option<bool>("--skip-bad-lines") { Description = "report bad records and go on instead of stopping at the first" };
        var cmd = new Command("dataset", "check a training data file: detected format, record count, bad records");
        cmd.Arguments.Add(file);
        cmd.Options.Add(format);
        cmd.Options.Add(skip);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            var ds = DatasetLoader.Load(pr.GetValue(file)!, new DatasetLoadOptions
            {
                Format = DatasetFormats.Parse(pr.GetValue(format)!),
                SkipBadLines = pr.GetValue(skip),
            });
            Console.WriteLine($"{ds.File}: {ds.Examples.Count} records, format {DatasetFormats.Name(ds.Format)}, {ds.SkippedCount} bad records skipped");
            foreach (var r in ds.SkippedReasons.Take(20)) Console.WriteLine("  " + r);
            if (ds.SkippedCount > 20) Console.WriteLine($"  ... and {ds.SkippedCount - 20} more");
            return 0;
        }));
        return cmd;
    }
}
