using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using PeftSharp.Inference;

namespace PeftSharp.Tests.Serving;

/// <summary>`peft serve` over real loopback HTTP, with the official OpenAI .NET SDK as the client where it has the call.</summary>
public sealed class ServeHttpTests(ServeFixture f) : IClassFixture<ServeFixture>
{
    static readonly HttpClient Http = new() { Timeout = TimeSpan.FromMinutes(2) };

    OpenAIClient Client() => new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(f.Url + "/v1") });

    static ChatCompletionOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokenCount = max };

    async Task<(HttpStatusCode Status, JsonObject Body)> Post(string path, string json)
    {
        using var r = await Http.PostAsync(f.Url + path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject());
    }

    static string Completion(string model, string prompt, int max, string extra = "") =>
        $$"""{"model":"{{model}}","prompt":{{JsonValue.Create(prompt).ToJsonString()}},"max_tokens":{{max}},"temperature":0{{extra}}}""";

    [Fact]
    public async Task Models_ListTheBaseAndEveryAdapter()
    {
        var models = await Client().GetOpenAIModelClient().GetModelsAsync();
        Assert.Equal(["a", "b", "c", "d", "tiny"], models.Value.Select(m => m.Id).Order().ToArray());
        using var health = await Http.GetAsync(f.Url + "/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("a")]
    [InlineData("b")]
    [InlineData("c")]
    public async Task GreedyCompletion_EqualsPeftGenerate_ForTheBaseAndEachAdapter(string? adapter)
    {
        const string prompt = "alpha beta gamma";
        var expected = f.Expected(adapter, f.CompletionPrompt(prompt), 10);
        var (status, body) = await Post("/v1/completions", Completion(adapter ?? "tiny", prompt, 10, ""","logprobs":2"""));
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body["choices"]![0]!;
        Assert.Equal(f.Reference.Tokenizer!.Decode(expected, skipSpecial: true), (string)choice["text"]!);
        Assert.Equal(expected.Length, (int)body["usage"]!["completion_tokens"]!);
        Assert.Equal(f.CompletionPrompt(prompt).Length, (int)body["usage"]!["prompt_tokens"]!);
        Assert.Equal(expected.Length, choice["logprobs"]!["token_logprobs"]!.AsArray().Count);
        Assert.All(choice["logprobs"]!["token_logprobs"]!.AsArray(), lp => Assert.True((double)lp! <= 0));
        Assert.Equal(expected.Length == 10 ? "length" : "stop", (string)choice["finish_reason"]!);
    }

    [Fact]
    public async Task Adapters_ChangeTheOutput()
    {
        var texts = new List<string>();
        foreach (var m in new[] { "tiny", "a", "b", "c", "d" })
            texts.Add((string)(await Post("/v1/completions", Completion(m, "red green", 12))).Body["choices"]![0]!["text"]!);
        Assert.True(texts.Distinct().Count() >= 4, string.Join(" | ", texts));   // the check can fail: adapters matter
    }

    [Fact]
    public async Task Chat_StreamingAndNot_EqualPeftGenerateOnTheTemplatedPrompt()
    {
        var chat = Client().GetChatClient("b");
        string expected = f.ExpectedText("b", f.ChatPrompt("one two"), 12);
        ChatCompletion done = await chat.CompleteChatAsync([new UserChatMessage("one two")], Greedy(12));
        Assert.Equal(expected, done.Content.Count == 0 ? "" : done.Content[0].Text);
        Assert.Equal(f.ChatPrompt("one two").Length, done.Usage.InputTokenCount);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage("one two")], Greedy(12)))
        {
            foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            finish ??= u.FinishReason;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(done.FinishReason, finish);
    }

    [Fact]
    public async Task CompletionStream_EndsWithDone_AndConcatenatesToTheText()
    {
        string expected = f.ExpectedText("d", f.CompletionPrompt("cat dog"), 9);
        using var req = new HttpRequestMessage(HttpMethod.Post, f.Url + "/v1/completions")
        { Content = new StringContent(Completion("d", "cat dog", 9, ""","stream":true"""), Encoding.UTF8, "application/json") };
        using var r = await Http.SendAsync(req);
        Assert.Equal("text/event-stream", r.Content.Headers.ContentType!.MediaType);
        var events = (await r.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        var text = string.Concat(events[..^1].Select(e => (string)JsonNode.Parse(e["data: ".Length..])!["choices"]![0]!["text"]!));
        Assert.Equal(expected, text);
    }

    [Fact]
    public async Task StopStrings_EndTheTextBeforeThem()
    {
        string full = (string)(await Post("/v1/completions", Completion("a", "blue", 16))).Body["choices"]![0]!["text"]!;
        Assert.True(full.Length > 4, full);
        string stop = full.Substring(3, 2);
        var (_, body) = await Post("/v1/completions", Completion("a", "blue", 16, $$""","stop":[{{JsonValue.Create(stop).ToJsonString()}}]"""));
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], (string)body["choices"]![0]!["text"]!);
        Assert.Equal("stop", (string)body["choices"]![0]!["finish_reason"]!);
    }

    [Fact]
    public async Task SixteenConcurrentClientsOverFourAdapters_EachEqualItsSequentialResult()
    {
        var jobs = Enumerable.Range(0, 16).Select(i => (Adapter: ServeFixture.AdapterNames[i % 4], Prompt: $"{(i % 3 == 0 ? "one" : "red")} {(i % 5 == 0 ? "cat" : "blue")} two", Max: 6 + i % 7,
            Seeded: i % 4 == 1)).ToArray();
        string Body((string Adapter, string Prompt, int Max, bool Seeded) j) =>
            j.Seeded ? Completion(j.Adapter, j.Prompt, j.Max).Replace("\"temperature\":0", "\"temperature\":0.9,\"top_p\":0.9,\"seed\":42") : Completion(j.Adapter, j.Prompt, j.Max);
        var sequential = new List<string>();
        foreach (var j in jobs) sequential.Add((string)(await Post("/v1/completions", Body(j))).Body["choices"]![0]!["text"]!);
        for (int i = 0; i < jobs.Length; i++)
            if (!jobs[i].Seeded) Assert.Equal(f.ExpectedText(jobs[i].Adapter, f.CompletionPrompt(jobs[i].Prompt), jobs[i].Max), sequential[i]);
            else Assert.Equal(f.ExpectedText(jobs[i].Adapter, f.CompletionPrompt(jobs[i].Prompt), jobs[i].Max, new SamplingOptions(0.9f, 0, 0.9f, 1, 42)), sequential[i]);

        var concurrent = await Task.WhenAll(jobs.Select(j => Task.Run(async () => (string)(await Post("/v1/completions", Body(j))).Body["choices"]![0]!["text"]!)));
        Assert.Equal(sequential, concurrent);
        Assert.True(f.Engine.Stats.PeakSequences > 1 && f.Engine.Stats.PeakAdapters > 1, $"{f.Engine.Stats}");   // the requests did share steps across adapters
    }

    [Fact]
    public async Task Unload_WaitsForRequestsInFlight_OthersUndisturbed_AndReloadWorks()
    {
        await Post("/v1/adapters", $$"""{"name":"c2","path":{{JsonValue.Create(f.AdapterDirs["c"]).ToJsonString()}}}""");
        string expectedC = f.ExpectedText("c", f.CompletionPrompt("gamma delta"), 40);
        string expectedA = f.ExpectedText("a", f.CompletionPrompt("gamma delta"), 40);
        var running = Post("/v1/completions", Completion("c2", "gamma delta", 40));
        var other = Post("/v1/completions", Completion("a", "gamma delta", 40));
        while (f.Served.UsersOf("c2") == 0 && !running.IsCompleted) await Task.Delay(1);
        using var del = await Http.DeleteAsync(f.Url + "/v1/adapters/c2");
        Assert.Equal(HttpStatusCode.OK, del.StatusCode);
        // The unload answered only once no request used c2 any more, so the running request ran to its end on c2: its
        // text is c2's in full (an adapter removed mid-way would leave the rest to the base model). Whether the client
        // has read the last bytes of that response yet is a race the server does not decide.
        Assert.Equal(expectedC, (string)(await running).Body["choices"]![0]!["text"]!);
        Assert.Equal(expectedA, (string)(await other).Body["choices"]![0]!["text"]!);
        var (gone, err) = await Post("/v1/completions", Completion("c2", "gamma", 4));
        Assert.Equal(HttpStatusCode.NotFound, gone);
        Assert.Equal("model_not_found", (string)err["error"]!["code"]!);
        var (loaded, _) = await Post("/v1/adapters", $$"""{"name":"c2","path":{{JsonValue.Create(f.AdapterDirs["c"]).ToJsonString()}}}""");
        Assert.Equal(HttpStatusCode.OK, loaded);
        Assert.Equal(expectedC, (string)(await Post("/v1/completions", Completion("c2", "gamma delta", 40))).Body["choices"]![0]!["text"]!);
        using var del2 = await Http.DeleteAsync(f.Url + "/v1/adapters/c2");
        Assert.Equal(HttpStatusCode.OK, del2.StatusCode);
    }

    [Fact]
    public async Task AClientThatDisconnectsMidStream_FreesItsSlot()
    {
        using var cts = new CancellationTokenSource();
        using var req = new HttpRequestMessage(HttpMethod.Post, f.Url + "/v1/completions")
        { Content = new StringContent(Completion("a", "one", 120, ""","stream":true"""), Encoding.UTF8, "application/json") };
        using (var r = await Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token))
        {
            using var reader = new StreamReader(await r.Content.ReadAsStreamAsync(cts.Token));
            Assert.StartsWith("data: ", await reader.ReadLineAsync(cts.Token));
            cts.Cancel();
        }
        for (int i = 0; i < 2000 && f.Served.UsersOf("a") > 0; i++) await Task.Delay(5);
        Assert.Equal(0, f.Served.UsersOf("a"));
    }

    [Theory]
    [InlineData("{not json", 400, null)]
    [InlineData("[1,2]", 400, null)]
    [InlineData("""{"prompt":"x"}""", 400, "model")]
    [InlineData("""{"model":"nope","prompt":"x"}""", 404, "model")]
    [InlineData("""{"model":"a","prompt":"x","max_tokens":"ten"}""", 400, "max_tokens")]
    [InlineData("""{"model":"a","prompt":"x","max_tokens":0}""", 400, "max_tokens")]
    [InlineData("""{"model":"a","prompt":"x","max_tokens":1.5}""", 400, "max_tokens")]
    [InlineData("""{"model":"a","prompt":"x","temperature":5}""", 400, "temperature")]
    [InlineData("""{"model":"a","prompt":"x","top_p":0}""", 400, "top_p")]
    [InlineData("""{"model":"a","prompt":"x","stream":"yes"}""", 400, "stream")]
    [InlineData("""{"model":"a","prompt":"x","stop":[1]}""", 400, "stop")]
    [InlineData("""{"model":"a","prompt":"x","logprobs":9}""", 400, "logprobs")]
    [InlineData("""{"model":"a","prompt":7}""", 400, "prompt")]
    [InlineData("""{"model":"a","prompt":"x","max_tokens":500}""", 400, "prompt")]
    public async Task BadCompletionRequests_GetOpenAiErrors_AndTheServerKeepsServing(string json, int status, string? param)
    {
        var (code, body) = await Post("/v1/completions", json);
        Assert.Equal(status, (int)code);
        var error = body["error"]!.AsObject();
        Assert.False(string.IsNullOrEmpty((string)error["message"]!));
        Assert.NotNull((string?)error["type"]);
        Assert.Equal(param, (string?)error["param"]);
        var (ok, _) = await Post("/v1/completions", Completion("a", "one", 2));
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task PromptLongerThanTheContext_AndBodyTooLarge_AreRefused()
    {
        string longPrompt = string.Join(' ', Enumerable.Repeat("alpha beta gamma delta", 80));
        var (code, body) = await Post("/v1/completions", $$"""{"model":"a","prompt":"{{longPrompt}}"}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("context_length_exceeded", (string)body["error"]!["code"]!);

        var (big, bigBody) = await Post("/v1/completions", $$"""{"model":"a","prompt":"{{new string('x', 100_000)}}"}""");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big);
        Assert.NotNull(bigBody["error"]);

        var chat = Client().GetChatClient("nope");
        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("x")], Greedy(2)));
        Assert.Equal(404, e.Status);
    }
}
