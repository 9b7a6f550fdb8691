using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.Peft;
using PeftSharp.Server;
using PeftSharp.Server.Engine;
using PeftSharp.Templates;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Serving;

/// <summary>
/// A tiny model folder (BPE tokenizer, chat template) with four saved adapters — LoRA "a" (r4 all-linear), DoRA "b"
/// (r2), LoRA "c" (r8 q/v), LoRA "d" (r4 all-linear, another seed) — served on a loopback port. Expected results
/// come from a separate, unserved copy of the model through <see cref="Generator"/> (what `peft generate --adapter` runs).
/// </summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string Template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    public static readonly string[] AdapterNames = ["a", "b", "c", "d"];

    public string ModelDir { get; } = TinyRun.ModelDir();
    public Dictionary<string, string> AdapterDirs { get; } = new();
    public PeftModel Reference { get; private set; } = null!;
    public PeftModel Served { get; private set; } = null!;
    public ServeEngine Engine { get; private set; } = null!;
    public PeftServer Server { get; private set; } = null!;
    public string Url => Server.Url;

    public async Task InitializeAsync()
    {
        var cfgPath = Path.Combine(ModelDir, "tokenizer_config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["chat_template"] = Template;
        File.WriteAllText(cfgPath, cfg.ToJsonString());

        using (var maker = PeftModel.Load(ModelDir, TestCompute.Cpu))
        {
            var configs = new Dictionary<string, LoraConfig>
            {
                ["a"] = new() { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" },
                ["b"] = new() { R = 2, LoraAlpha = 4, TargetModulesRegex = "all-linear", UseDora = true },
                ["c"] = new() { R = 8, LoraAlpha = 8, TargetModules = ["q_proj", "v_proj"] },
                ["d"] = new() { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" },
            };
            var rng = new Random(5);
            foreach (var (name, c) in configs)
            {
                maker.AddAdapter(name, c, (ulong)name[0]);
                foreach (var m in maker.LoraModules)
                    if (m.Adapters.TryGetValue(name, out var ad))
                        foreach (var p in ad.Parameters())
                        {
                            var v = p.Value.Floats;
                            for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;   // B ≠ 0: every adapter matters
                        }
                var dir = Path.Combine(ModelDir, "adapter-" + name);
                maker.Save(dir, name);
                AdapterDirs[name] = dir;
            }
        }
        Reference = PeftModel.Load(ModelDir, TestCompute.Cpu);
        Served = PeftModel.Load(ModelDir, TestCompute.Cpu);
        foreach (var (name, dir) in AdapterDirs) { Reference.LoadAdapter(dir, name); Served.LoadAdapter(dir, name); }
        Served.SetActive(null);
        Engine = new ServeEngine(Served, TestCompute.Cpu, new EngineOptions { MaxBatch = 8, MaxQueue = 64 });
        Server = await PeftServer.StartAsync(Engine, new ServerOptions { Port = 0, BaseModelName = "tiny", MaxBodyBytes = 64 * 1024 });
    }

    /// <summary>The tokens `peft generate --adapter` produces: Generator over the reference model.</summary>
    public int[] Expected(string? adapter, int[] prompt, int maxNew, SamplingOptions? sampling = null)
    {
        var stop = new HashSet<int>(Reference.Model.Config.EosTokenIds);
        if (Reference.Tokenizer!.EosId is int eos) stop.Add(eos);
        return Generator.Generate(Reference.Model, TestCompute.Cpu, Reference.Route(adapter), prompt, maxNew, sampling ?? SamplingOptions.Greedy, stop).ToArray();
    }

    public string ExpectedText(string? adapter, int[] prompt, int maxNew, SamplingOptions? sampling = null) =>
        Reference.Tokenizer!.Decode(Expected(adapter, prompt, maxNew, sampling), skipSpecial: true);

    public int[] CompletionPrompt(string text) => Reference.Tokenizer!.Encode(text, addSpecial: true);

    public int[] ChatPrompt(string user) =>
        Reference.Tokenizer!.Encode(Reference.ChatTemplate!.Render([new ChatMessage("user", user)], addGenerationPrompt: true), addSpecial: false);

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Engine.Dispose();
        Served.Dispose();
        Reference.Dispose();
        try { Directory.Delete(ModelDir, recursive: true); } catch (IOException) { }
    }
}
