using System.CommandLine;
using PeftSharp.Data;
using PeftSharp.Templates;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft template MODEL --messages FILE`: renders a conversation of a data file through the model's chat
/// template and marks the parts that are trained on, to check what the model will see.</summary>
internal sealed class TemplateCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Argument<string>("model") { Description = "model folder or its tokenizer_config.json" };
        var messages = new Option<string>("--messages") { Description = "a .jsonl/.json file of {\"messages\": [...]} records", Required = true };
        var line = new Option<int>("--line") { Description = "line of the record to render (default: the first record)", DefaultValueFactory = _ => 0 };
        var templateFile = new Option<string?>("--template-file") { Description = "a .jinja file to use instead of the model's chat_template" };
        var genPrompt = new Option<bool>("--add-generation-prompt") { Description = "render as a prompt awaiting the assistant's answer" };
        var cmd = new Command("template", "render a conversation through a model's chat template, trained spans marked with [[ ]]");
        cmd.Arguments.Add(model);
        cmd.Options.Add(messages);
        cmd.Options.Add(line);
        cmd.Options.Add(templateFile);
        cmd.Options.Add(genPrompt);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string? source = pr.GetValue(templateFile) is string tf ? File.ReadAllText(tf) : null;
            var template = ChatTemplateSource.Load(ModelLocator.Value(pr, model), source);
            var ds = DatasetLoader.Load(pr.GetValue(messages)!, new DatasetLoadOptions { Format = DatasetFormat.Messages, SkipBadLines = true });
            int wanted = pr.GetValue(line);
            var ex = wanted == 0 ? ds.Examples[0] : ds.Examples.FirstOrDefault(e => e.Line == wanted)
                ?? throw new PeftException($"{ds.File}:{wanted}: no record starts on this line");
            if (pr.GetValue(genPrompt))
            {
                Console.Write(template.Render(ex.Messages!, addGenerationPrompt: true));
                return 0;
            }
            var (text, spans) = ChatTurnLocator.Locate(template, ex.Messages!);
            int pos = 0;
            foreach (var (s, e) in spans)
            {
                Console.Write(text[pos..s]);
                Console.Write("[[" + text[s..e] + "]]");
                pos = e;
            }
            Console.WriteLine(text[pos..]);
            return 0;
        }));
        return cmd;
    }
}
