using System.Text.Json.Nodes;
using PeftSharp.Templates;

namespace PeftSharp.Tests.Templates;

/// <summary>The Llama 3, Qwen3, Llama 2 and Gemma 3 chat templates rendered here must equal @huggingface/jinja's output
/// (tests/fixtures/templates/expected.json, made by make-fixtures.mjs) character for character.</summary>
public class ChatTemplateReferenceTests
{
    private static readonly JsonObject Expected =
        JsonNode.Parse(File.ReadAllText(Path.Combine(TemplateFixtures.Templates, "expected.json")))!.AsObject();

    private static ChatTemplate LoadTemplate(string name)
    {
        var info = Expected["templates"]![name]!;
        string file = info["file"]!.GetValue<string>();
        if (file.EndsWith(".jinja"))
        {
            string src = File.ReadAllText(Path.Combine(TemplateFixtures.Templates, file));
            return new ChatTemplate(src, info["bos_token"]?.GetValue<string>(), info["eos_token"]?.GetValue<string>());
        }
        return ChatTemplateSource.Load(TemplateFixtures.NpmConfig(file));
    }

    public static IEnumerable<object[]> Cases() =>
        Expected["cases"]!.AsArray().Select((c, i) => new object[]
        {
            i, c!["template"]!.GetValue<string>(), c["conversation"]!.GetValue<string>(),
            c["add_generation_prompt"]!.GetValue<bool>(), c["extra"]!.ToJsonString(),
        });

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeReference(int index, string template, string conversation, bool addGenerationPrompt, string extraJson)
    {
        var c = Expected["cases"]![index]!;
        var messages = Expected["conversations"]![conversation]!.AsArray()
            .Select(m => new ChatMessage(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>(),
                m.AsObject().Where(kv => kv.Key is not ("role" or "content")).ToDictionary(kv => kv.Key, kv => (object?)kv.Value)))
            .ToList();
        var extra = JsonNode.Parse(extraJson)!.AsObject().ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
        if (c["error"] is { } error)
        {
            var ex = Assert.Throws<TemplateRaisedException>(() => LoadTemplate(template).Render(messages, addGenerationPrompt, extra));
            Assert.Equal(error.GetValue<string>(), ex.Message);
            return;
        }
        string actual = LoadTemplate(template).Render(messages, addGenerationPrompt, extra);
        Assert.Equal(c["expected"]!.GetValue<string>(), actual);
    }

    public static IEnumerable<object[]> Features() =>
        Expected["features"]!.AsArray().Select(f => new object[] { f!["name"]!.GetValue<string>() });

    /// <summary>Small templates, one per supported feature, rendered by the reference renderer with the same variables.</summary>
    [Theory]
    [MemberData(nameof(Features))]
    public void FeatureRendersLikeReference(string name)
    {
        var f = Expected["features"]!.AsArray().First(x => x!["name"]!.GetValue<string>() == name)!;
        var vars = Expected["feature_vars"]!.AsObject().ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
        string actual = new JinjaTemplate(f["template"]!.GetValue<string>()).Render(vars);
        Assert.Equal(f["expected"]!.GetValue<string>(), actual);
    }

    [Fact]
    public void FixtureCoversEveryTemplateWithAndWithoutSystem()
    {
        var cases = Expected["cases"]!.AsArray();
        foreach (var t in new[] { "llama3", "qwen3", "llama2", "gemma3" })
        {
            Assert.Contains(cases, c => c!["template"]!.GetValue<string>() == t && c["conversation"]!.GetValue<string>() == "multi-turn");
            Assert.Contains(cases, c => c!["template"]!.GetValue<string>() == t && c["conversation"]!.GetValue<string>() == "system-multi-turn");
        }
    }

    [Fact]
    public void Llama2RejectsNonAlternatingRolesWithTheTemplatesMessage()
    {
        var t = LoadTemplate("llama2");
        var messages = new List<ChatMessage> { new("user", "a"), new("user", "b") };
        var ex = Assert.Throws<TemplateRaisedException>(() => t.Render(messages));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", ex.Message);
    }

    [Fact]
    public void Gemma3FoldsTheSystemTurnIntoTheFirstUserTurnAndRejectsNonAlternatingRoles()
    {
        var t = LoadTemplate("gemma3");
        string text = t.Render([new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello")], addGenerationPrompt: true);
        Assert.Equal("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n<start_of_turn>model\n", text);
        var ex = Assert.Throws<TemplateRaisedException>(() => t.Render([new("user", "a"), new("user", "b")]));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", ex.Message);
    }
}
