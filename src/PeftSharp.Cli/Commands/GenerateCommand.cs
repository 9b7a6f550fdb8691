using System.CommandLine;
using System.Text.Json.Nodes;
using PeftSharp.Inference;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft generate &lt;model-dir&gt; --prompt "…"` (or --ids 1,2,3): sampled continuation, streamed.</summary>
internal sealed class GenerateCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument();
        var prompt = new Option<string?>("--prompt") { Description = "prompt text (needs tokenizer.json in the model folder)" };
        var ids = new Option<string?>("--ids") { Description = "prompt as comma-separated token ids" };
        var quantize = ModelLoading.QuantizeOptions();
        var adapters = new Option<string[]>("--adapter") { Description = "PEFT adapter folder(s) to apply (the last one is active)", AllowMultipleArgumentsPerToken = false };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 1f };
        var penalty = new Option<float>("--repetition-penalty") { DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var chat = new Option<bool>("--chat") { Description = "send --prompt as a user message through the model's chat template and stop at the end of the reply" };
        var json = new Option<bool>("--json") { Description = "print {\"ids\":[…],\"text\":…} instead of streaming text" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("generate", "continue a prompt with the model (KV cache; greedy or sampled)");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(quantize.Type);
        cmd.Options.Add(quantize.DoubleQuant);
        foreach (var o in new Option[] { prompt, ids, adapters, maxNew, temperature, topK, topP, penalty, seed, chat, json, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string modelDir = ModelLocator.Value(pr, dir);
            string? text = pr.GetValue(prompt), idText = pr.GetValue(ids);
            if ((text == null) == (idText == null)) throw new PeftException("give exactly one of --prompt or --ids");
            bool asChat = pr.GetValue(chat);
            if (asChat && text == null) throw new PeftException("--chat needs --prompt (the user message)");
            var tokenizer = text != null || File.Exists(Path.Combine(modelDir, "tokenizer.json")) ? ModelLoading.Tokenizer(modelDir) : null;
            var chatPrompt = asChat ? ChatPrompt.For(modelDir, tokenizer!) : null;
            chatPrompt?.Messages.Add(new PeftSharp.Templates.ChatMessage("user", text!));
            using var pm = ModelLoading.Load(compute, modelDir, pr.GetValue(adapters), ModelLoading.ParseQuantize(pr, quantize));
            int[] promptIds = chatPrompt != null ? chatPrompt.Ids() : text != null ? tokenizer!.Encode(text, addSpecial: true) : TokenIds.Parse(idText!, "--ids");
            var stop = chatPrompt?.StopIds(pm.Model) ?? new HashSet<int>(pm.Model.Config.EosTokenIds);
            if (tokenizer?.EosId is int eos) stop.Add(eos);
            var options = new SamplingOptions(pr.GetValue(temperature), pr.GetValue(topK), pr.GetValue(topP), pr.GetValue(penalty), pr.GetValue(seed));
            var produced = new List<int>();
            bool asJson = pr.GetValue(json) || tokenizer == null;
            if (!asJson && !asChat) Console.Write(text);   // a chat reply is printed alone
            int printed = 0;
            foreach (var id in Generator.Generate(pm.Model, compute, pm.Route(pm.Active), promptIds, pr.GetValue(maxNew), options, stop))
            {
                produced.Add(id);
                if (asJson) continue;
                // Decode the whole continuation and print what is new, holding back a split multi-byte character.
                var all = tokenizer!.Decode(produced.ToArray(), skipSpecial: true);
                if (all.Length > printed && !all.EndsWith('\uFFFD')) { Console.Write(all[printed..]); printed = all.Length; }
            }
            if (asJson)
                Console.WriteLine(new JsonObject
                {
                    ["prompt_ids"] = new JsonArray(promptIds.Select(i => (JsonNode)i).ToArray()),
                    ["ids"] = new JsonArray(produced.Select(i => (JsonNode)i).ToArray()),
                    ["text"] = tokenizer?.Decode(produced.ToArray(), skipSpecial: true),
                }.ToJsonString());
            else Console.WriteLine();
            return 0;
        }));
        return cmd;
    }
}
