using System.ClientModel;
using System.Net;
using Microsoft.Extensions.AI;
using OpenAI;
using PeftSharp.Inference;
using PeftSharp.Server;
using PeftSharp.Server.Engine;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Serving;

/// <summary>The engine's limits, the in-process IChatClient, and the API key, over the fixture's model.</summary>
public sealed class ServeEngineTests(ServeFixture f) : IClassFixture<ServeFixture>
{
    [Fact]
    public async Task ChatClient_InProcess_EqualsPeftGenerate_AndStreams()
    {
        IChatClient client = new PeftChatClient(f.Engine, "d");
        string expected = f.ExpectedText("d", f.ChatPrompt("green cat"), 10);
        var options = new ChatOptions { MaxOutputTokens = 10, Temperature = 0 };
        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "green cat")], options);
        Assert.Equal(expected, response.Text);
        Assert.Equal(f.ChatPrompt("green cat").Length, response.Usage!.InputTokenCount);
        var streamed = string.Concat(await client.GetStreamingResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "green cat")], options)
            .Select(u => u.Text).ToListAsync());
        Assert.Equal(expected, streamed);
    }

    [Fact]
    public async Task AFullQueue_IsRefused_AndCancelledRequestsLeave()
    {
        using var engine = new ServeEngine(f.Served, TestCompute.Cpu, new EngineOptions { MaxBatch = 1, MaxQueue = 1 });
        var prompt = f.CompletionPrompt("one two");
        using var cts = new CancellationTokenSource();
        var first = engine.Submit(new GenerationRequest(prompt, "a", 100, SamplingOptions.Greedy), cts.Token);
        var second = engine.Submit(new GenerationRequest(prompt, "b", 3, SamplingOptions.Greedy));
        Assert.Throws<EngineBusyException>(() => engine.Submit(new GenerationRequest(prompt, null, 3, SamplingOptions.Greedy)));
        cts.Cancel();
        await foreach (var _ in first.ReadAllAsync()) { }
        var tokens = new List<int>();
        await foreach (var t in second.ReadAllAsync()) tokens.Add(t.Id);
        Assert.Equal(f.Expected("b", prompt, 3), tokens);
        Assert.Null(first.FinishReason);   // cancelled, not finished
        Assert.Equal(0, f.Served.UsersOf("a"));
    }

    [Fact]
    public void BadEngineRequests_AreErrorsNamingTheProblem()
    {
        var prompt = f.CompletionPrompt("one");
        Assert.Throws<UnknownModelException>(() => f.Engine.Submit(new GenerationRequest(prompt, "zzz", 3, SamplingOptions.Greedy)));
        Assert.Throws<ContextLengthException>(() => f.Engine.Submit(new GenerationRequest(new int[200], null, 3, SamplingOptions.Greedy)));
        Assert.Contains("vocabulary", Assert.Throws<PeftException>(() => f.Engine.Submit(new GenerationRequest([1, 99999], null, 3, SamplingOptions.Greedy))).Message);
        Assert.Contains("temperature", Assert.Throws<PeftException>(() => f.Engine.Submit(new GenerationRequest(prompt, null, 3, new SamplingOptions(-1)))).Message);
    }

    [Fact]
    public async Task ApiKey_IsRequired_WhenSet()
    {
        await using var server = await PeftServer.StartAsync(f.Engine, new ServerOptions { Port = 0, ApiKey = "sekret", BaseModelName = "tiny" });
        using var http = new HttpClient();
        using var refused = await http.GetAsync(server.Url + "/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("\"error\"", await refused.Content.ReadAsStringAsync());
        var wrong = new OpenAIClient(new ApiKeyCredential("nope"), new OpenAIClientOptions { Endpoint = new Uri(server.Url + "/v1") });
        Assert.Equal(401, (await Assert.ThrowsAsync<ClientResultException>(() => wrong.GetOpenAIModelClient().GetModelsAsync())).Status);
        var right = new OpenAIClient(new ApiKeyCredential("sekret"), new OpenAIClientOptions { Endpoint = new Uri(server.Url + "/v1") });
        Assert.Contains((await right.GetOpenAIModelClient().GetModelsAsync()).Value, m => m.Id == "a");
    }
}
