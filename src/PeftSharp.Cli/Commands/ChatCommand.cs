using System.CommandLine;
using PeftSharp.Inference;
using PeftSharp.Templates;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft chat &lt;model&gt; [--adapter DIR]`: an interactive conversation through the model's chat template. Each line
/// read from standard input is a user turn; the reply streams out and joins the conversation. `/reset` starts over,
/// `/exit` or end of input ends. Works with piped input too (one turn per line).
/// </summary>
internal sealed class ChatCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument("model folder with a chat template (tokenizer_config.json or chat_template.jinja)");
        var adapters = new Option<string[]>("--adapter") { Description = "PEFT adapter folder(s) to apply (the last one is active)" };
        var system = new Option<string?>("--system") { Description = "a system message at the start of the conversation" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "longest reply, in tokens", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 1f };
        var penalty = new Option<float>("--repetition-penalty") { DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var quantize = ModelLoading.QuantizeOptions();
        var threads = SharedOptions.Threads();
        var cmd = new Command("chat", "chat with a model through its chat template (one user turn per input line; /reset, /exit)");
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { adapters, system, maxNew, temperature, topP, penalty, seed, quantize.Type, quantize.DoubleQuant, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string modelDir = ModelLocator.Value(pr, dir);
            var tokenizer = ModelLoading.Tokenizer(modelDir);
            var chat = ChatPrompt.For(modelDir, tokenizer);
            using var pm = ModelLoading.Load(compute, modelDir, pr.GetValue(adapters), ModelLoading.ParseQuantize(pr, quantize));
            var stop = chat.StopIds(pm.Model);
            var options = new SamplingOptions(pr.GetValue(temperature), 0, pr.GetValue(topP), pr.GetValue(penalty), pr.GetValue(seed));
            string? systemText = pr.GetValue(system);
            void Reset()
            {
                chat.Messages.Clear();
                if (systemText != null) chat.Messages.Add(new ChatMessage("system", systemText));
            }
            Reset();
            bool interactive = !Console.IsInputRedirected;
            if (interactive) Console.Error.WriteLine("one message per line; /reset starts over, /exit or Ctrl-D ends");
            while (true)
            {
                if (interactive) Console.Write("you> ");
                string? line = Console.In.ReadLine();
                if (line == null || line.Trim() == "/exit") break;
                if (line.Trim().Length == 0) continue;
                if (line.Trim() == "/reset") { Reset(); Console.WriteLine("(conversation reset)"); continue; }
                chat.Messages.Add(new ChatMessage("user", line));
                Console.Write("assistant> ");
                var reply = new StreamingText(tokenizer, Console.Out);
                foreach (var id in Generator.Generate(pm.Model, compute, pm.Route(pm.Active), chat.Ids(), pr.GetValue(maxNew), options, stop)) reply.Add(id);
                Console.WriteLine();
                chat.Messages.Add(new ChatMessage("assistant", reply.Text.Trim()));
            }
            return 0;
        }));
        return cmd;
    }
}
