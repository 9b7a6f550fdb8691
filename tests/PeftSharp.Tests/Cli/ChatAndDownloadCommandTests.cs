using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Templates;
using PeftSharp.Tests.Hub;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Cli;

/// <summary>`peft chat` with piped input, `generate --chat`, and `peft download` then a command using the model id.</summary>
public class ChatAndDownloadCommandTests
{
    /// <summary>The greedy reply the library gives for a conversation rendered through the template.</summary>
    static string ExpectedReply(string model, IReadOnlyList<ChatMessage> messages, int maxNew)
    {
        var tok = HfTokenizer.Load(model);
        var template = ChatTemplateSource.Load(model);
        var ids = tok.Encode(template.Render(messages, addGenerationPrompt: true), addSpecial: false);
        using var lm = CausalLM.Load(model);
        var stop = new HashSet<int>(lm.Config.EosTokenIds);
        if (tok.EosId is int eos) stop.Add(eos);
        var outIds = Generator.Generate(lm, TestCompute.Cpu, PeftSharp.Nn.AdapterRouting.None, ids, maxNew, new SamplingOptions(0, 0, 1, 1, 0), stop).ToArray();
        return tok.Decode(outIds, skipSpecial: true);
    }

    [Fact]
    public void Chat_reads_turns_from_stdin_keeps_the_conversation_and_resets()
    {
        string dir = PeftProcess.TempDir("chat");
        try
        {
            string model = PeftProcess.DefaultModelWithChatTemplate(dir);
            var (code, stdout, stderr) = PeftProcess.Run(["chat", model, "--max-new-tokens", "8", "--threads", "1"],
                stdin: "In the beginning\nAnd God said\n/reset\nIn the beginning\n");
            Assert.True(code == 0, stdout + stderr);
            var replies = stdout.Split('\n').Where(l => l.StartsWith("assistant> ")).Select(l => l["assistant> ".Length..]).ToList();
            Assert.Equal(3, replies.Count);
            string first = ExpectedReply(model, [new("user", "In the beginning")], 8);
            Assert.Equal(first, replies[0]);
            // The second turn sees the first exchange; after /reset the conversation starts over.
            Assert.Equal(ExpectedReply(model, [new("user", "In the beginning"), new("assistant", first.Trim()), new("user", "And God said")], 8), replies[1]);
            Assert.Contains("(conversation reset)", stdout);
            Assert.Equal(first, replies[2]);

            var (gcode, gout, gerr) = PeftProcess.Run(["generate", model, "--chat", "--prompt", "In the beginning", "--max-new-tokens", "8", "--threads", "1"]);
            Assert.True(gcode == 0, gout + gerr);
            Assert.Equal(first, gout.TrimEnd('\n'));

            var (ncode, _, nerr) = PeftProcess.Run(["chat", PeftProcess.DefaultModel], stdin: "hi\n");
            Assert.Equal(1, ncode);
            Assert.Contains("no chat template", nerr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task Download_puts_a_model_in_the_cache_where_every_command_finds_it_by_id()
    {
        string dir = PeftProcess.TempDir("dl-cli");
        await using var hub = await FakeHub.StartAsync();
        try
        {
            var files = Directory.GetFiles(PeftProcess.DefaultModel).ToDictionary(f => Path.GetFileName(f), f => File.ReadAllBytes(f));
            string commit = hub.AddRepo("kjv/tiny-llama", files, lfsFiles: ["model.safetensors"]);
            var env = new Dictionary<string, string> { ["HF_HUB_CACHE"] = Path.Combine(dir, "cache"), ["HF_ENDPOINT"] = hub.Endpoint, ["HF_HUB_OFFLINE"] = "" };

            var (code, stdout, stderr) = PeftProcess.Run(["download", "kjv/tiny-llama"], env);
            Assert.True(code == 0, stdout + stderr);
            string snapshot = Path.Combine(dir, "cache", "models--kjv--tiny-llama", "snapshots", commit);
            Assert.Equal(snapshot, stdout.Trim());
            Assert.Contains("model.safetensors", stderr);

            var (icode, iout, ierr) = PeftProcess.Run(["inspect", "kjv/tiny-llama"], env);
            Assert.True(icode == 0, iout + ierr);
            Assert.Contains("llama", iout);

            var offline = new Dictionary<string, string>(env) { ["HF_HUB_OFFLINE"] = "1", ["HF_ENDPOINT"] = "http://127.0.0.1:9" };
            var (ocode, oout, oerr) = PeftProcess.Run(["download", $"kjv/tiny-llama@{commit}"], offline);
            Assert.True(ocode == 0, oout + oerr);
            Assert.Equal(snapshot, oout.Trim());

            var (mcode, _, merr) = PeftProcess.Run(["inspect", "kjv/missing"], env);
            Assert.Equal(1, mcode);
            Assert.Contains("peft download kjv/missing", merr);
        }
        finally { Directory.Delete(dir, true); }
    }
}
