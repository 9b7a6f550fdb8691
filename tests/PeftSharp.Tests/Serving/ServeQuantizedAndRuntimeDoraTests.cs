using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using PeftSharp.Inference;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Server;
using PeftSharp.Server.Engine;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Serving;

/// <summary>
/// `peft serve --quantize nf4|fp4` (QLoRA bases) and DoRA adapters loaded at run time with `POST /v1/adapters`, over
/// real loopback HTTP with the OpenAI SDK: greedy answers equal what `peft generate` (the in-process generator over a
/// separately loaded model with the same settings) gives.
/// </summary>
public sealed class ServeQuantizedAndRuntimeDoraTests(ServeFixture f) : IClassFixture<ServeFixture>
{
    static readonly HttpClient Http = new() { Timeout = TimeSpan.FromMinutes(2) };

    static ChatCompletionOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokenCount = max };

    static OpenAIClient Client(string url) => new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(url + "/v1") });

    static async Task<HttpStatusCode> LoadAdapter(string url, string name, string dir)
    {
        var json = $$"""{"name":{{JsonValue.Create(name).ToJsonString()}},"path":{{JsonValue.Create(dir).ToJsonString()}}}""";
        using var r = await Http.PostAsync(url + "/v1/adapters", new StringContent(json, Encoding.UTF8, "application/json"));
        return r.StatusCode;
    }

    static string ExpectedChat(PeftModel reference, string? adapter, string user, int maxNew)
    {
        var prompt = reference.Tokenizer!.Encode(reference.ChatTemplate!.Render([new PeftSharp.Templates.ChatMessage("user", user)], addGenerationPrompt: true), addSpecial: false);
        var stop = new HashSet<int>(reference.Model.Config.EosTokenIds);
        if (reference.Tokenizer.EosId is int eos) stop.Add(eos);
        var ids = Generator.Generate(reference.Model, TestCompute.Cpu, reference.Route(adapter), prompt, maxNew, SamplingOptions.Greedy, stop).ToArray();
        return reference.Tokenizer.Decode(ids, skipSpecial: true);
    }

    static async Task<string> Chat(OpenAIClient client, string model, string user, int maxNew)
    {
        ChatCompletion done = await client.GetChatClient(model).CompleteChatAsync([new UserChatMessage(user)], Greedy(maxNew));
        return done.Content.Count == 0 ? "" : done.Content[0].Text;
    }

    [Theory]
    [InlineData("nf4")]
    [InlineData("fp4")]
    public async Task QuantizedBase_WithLoraAndARuntimeDora_EqualsPeftGenerateOnTheSameQuantizedBase(string type)
    {
        var quantize = QuantizeOptions.Parse(type, doubleQuant: true);
        using var reference = PeftModel.Load(f.ModelDir, TestCompute.Cpu, quantize);
        using var served = PeftModel.Load(f.ModelDir, TestCompute.Cpu, quantize);
        foreach (var name in new[] { "a", "b", "c" }) reference.LoadAdapter(f.AdapterDirs[name], name);
        served.LoadAdapter(f.AdapterDirs["a"], "a");
        served.LoadAdapter(f.AdapterDirs["c"], "c");
        Assert.NotEmpty(served.LoraModules);
        Assert.All(served.LoraModules, m => Assert.IsType<QuantizedLinear>(m.Base));   // the base really is 4-bit ("a" is all-linear)
        served.SetActive(null);
        using var engine = new ServeEngine(served, TestCompute.Cpu, new EngineOptions { MaxBatch = 8, MaxQueue = 32 });
        await using var server = await PeftServer.StartAsync(engine, new ServerOptions { Port = 0, BaseModelName = "tiny" });
        var client = Client(server.Url);

        Assert.Equal(HttpStatusCode.OK, await LoadAdapter(server.Url, "b", f.AdapterDirs["b"]));   // DoRA onto the 4-bit base at run time
        var jobs = new[] { ("tiny", (string?)null, "one two"), ("a", "a", "red cat"), ("b", "b", "green dog"), ("c", "c", "alpha beta"),
                           ("b", "b", "blue three"), ("a", "a", "gamma") };
        var concurrent = await Task.WhenAll(jobs.Select(j => Chat(client, j.Item1, j.Item3, 10)));
        for (int i = 0; i < jobs.Length; i++)
            Assert.Equal(ExpectedChat(reference, jobs[i].Item2, jobs[i].Item3, 10), concurrent[i]);
        // the quantization matters: the same completion's log-probabilities differ from the float base's (served by the fixture)
        async Task<double[]> LogProbs(string url)
        {
            using var r = await Http.PostAsync(url + "/v1/completions", new StringContent(
                """{"model":"a","prompt":"red cat","max_tokens":4,"temperature":0,"logprobs":1}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return JsonNode.Parse(await r.Content.ReadAsStringAsync())!["choices"]![0]!["logprobs"]!["token_logprobs"]!.AsArray().Select(v => (double)v!).ToArray();
        }
        Assert.NotEqual(await LogProbs(f.Url), await LogProbs(server.Url));
        Assert.True(engine.Stats.PeakAdapters > 1, $"{engine.Stats}");
    }

    [Fact]
    public async Task DoraAdaptersLoadedAtRunTime_OfOtherRanks_ServeAmongLora_AndEqualPeftGenerate()
    {
        // A second DoRA adapter (rank 6, q/k/v/o only) made and saved here, beside the fixture's DoRA "b" (rank 2, all-linear).
        var dir = Path.Combine(f.ModelDir, "adapter-dora6");
        using (var maker = PeftModel.Load(f.ModelDir, TestCompute.Cpu))
        {
            maker.AddAdapter("e", new LoraConfig { R = 6, LoraAlpha = 3, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"], UseDora = true }, 11);
            var rng = new Random(9);
            foreach (var m in maker.LoraModules)
                if (m.Adapters.TryGetValue("e", out var ad))
                    foreach (var p in ad.Parameters())
                    {
                        var v = p.Value.Floats;
                        for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
                    }
            maker.Save(dir, "e");
        }
        using var reference = PeftModel.Load(f.ModelDir, TestCompute.Cpu);
        reference.LoadAdapter(dir, "e");
        reference.LoadAdapter(f.AdapterDirs["b"], "b");
        var client = Client(f.Url);

        Assert.Equal(HttpStatusCode.OK, await LoadAdapter(f.Url, "dora-e", dir));
        Assert.Equal(HttpStatusCode.OK, await LoadAdapter(f.Url, "dora-b", f.AdapterDirs["b"]));
        Assert.Contains((await client.GetOpenAIModelClient().GetModelsAsync()).Value, m => m.Id == "dora-e");
        try
        {
            var jobs = new[] { ("dora-e", "e", "one cat"), ("a", "a", "one cat"), ("dora-b", "b", "red two"), ("dora-e", "e", "blue dog"), ("c", "c", "red two") };
            var concurrent = await Task.WhenAll(jobs.Select(j => Chat(client, j.Item1, j.Item3, 10)));
            for (int i = 0; i < jobs.Length; i++)
            {
                string expected = jobs[i].Item2 is "e" or "b" ? ExpectedChat(reference, jobs[i].Item2, jobs[i].Item3, 10) : f.ExpectedText(jobs[i].Item2, f.ChatPrompt(jobs[i].Item3), 10);
                Assert.Equal(expected, concurrent[i]);
            }
            Assert.NotEqual(f.ExpectedText(null, f.ChatPrompt("one cat"), 10), concurrent[0]);   // the DoRA adapter changes the answer

            // streamed through the SDK too
            var streamed = new StringBuilder();
            await foreach (var u in client.GetChatClient("dora-e").CompleteChatStreamingAsync([new UserChatMessage("blue dog")], Greedy(10)))
                foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            Assert.Equal(concurrent[3], streamed.ToString());
            // serving never trains: no loaded adapter allocated gradients
            Assert.All(f.Served.LoraModules, m => Assert.All(m.Adapters.Values.SelectMany(a => a.Parameters()), p => Assert.False(p.HasGrad, p.Name)));
        }
        finally
        {
            using (var d = await Http.DeleteAsync(f.Url + "/v1/adapters/dora-e")) Assert.Equal(HttpStatusCode.OK, d.StatusCode);
            using (var d = await Http.DeleteAsync(f.Url + "/v1/adapters/dora-b")) Assert.Equal(HttpStatusCode.OK, d.StatusCode);
        }
        Assert.DoesNotContain((await client.GetOpenAIModelClient().GetModelsAsync()).Value, m => m.Id == "dora-e");
    }
}
