using System.CommandLine;
using PeftSharp.Server;
using PeftSharp.Server.Engine;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft serve &lt;model-dir&gt; [--adapter NAME=DIR]…`: the OpenAI-compatible HTTP server with continuous batching across adapters.</summary>
internal sealed class ServeCommand : ICliCommand
{
    public Command Build()
    {
        var dir = new Argument<string>("model-dir") { Description = "Hugging Face model folder (with tokenizer.json)" };
        var adapters = new Option<string[]>("--adapter") { Description = "NAME=DIR: a PEFT adapter folder served as model NAME (repeatable)" };
        var quantize = ModelLoading.QuantizeOptions();
        var host = new Option<string>("--host") { Description = "address to bind (default loopback)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 8000 };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together at most", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "requests waiting for a slot at most (then 429)", DefaultValueFactory = _ => 64 };
        var maxBody = new Option<long>("--max-body-bytes") { DefaultValueFactory = _ => 1 << 20 };
        var apiKey = new Option<string?>("--api-key") { Description = "require Authorization: Bearer KEY" };
        var name = new Option<string?>("--served-model-name") { Description = "the base model's id (default: the folder name)" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("serve", "serve the model and its adapters over an OpenAI-compatible HTTP API");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(quantize.Type);
        cmd.Options.Add(quantize.DoubleQuant);
        foreach (var o in new Option[] { adapters, host, port, maxBatch, maxQueue, maxBody, apiKey, name, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string modelDir = pr.GetValue(dir)!;
            var named = (pr.GetValue(adapters) ?? []).Select(ParseAdapter).ToList();
            using var pm = ModelLoading.Load(compute, modelDir, [], ModelLoading.ParseQuantize(pr, quantize));
            if (pm.Tokenizer == null) throw new PeftException($"{modelDir}: serving needs tokenizer.json");
            foreach (var (n, path) in named)
            {
                var report = pm.LoadAdapter(path, n);
                Console.Error.WriteLine($"adapter {n}: {path} ({report.Config.R} rank{(report.Config.UseDora ? ", DoRA" : "")})");
            }
            pm.SetActive(null);
            using var engine = new ServeEngine(pm, compute, new EngineOptions { MaxBatch = pr.GetValue(maxBatch), MaxQueue = pr.GetValue(maxQueue) });
            var options = new ServerOptions
            {
                Host = pr.GetValue(host)!, Port = pr.GetValue(port), ApiKey = pr.GetValue(apiKey), MaxBodyBytes = pr.GetValue(maxBody),
                BaseModelName = pr.GetValue(name) ?? Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd('/')),
            };
            var server = PeftServer.StartAsync(engine, options).GetAwaiter().GetResult();
            Console.Error.WriteLine($"serving '{options.BaseModelName}' (+{named.Count} adapters) on {server.Url}/v1 (Ctrl+C or SIGTERM stops)");
            server.WaitForShutdownAsync().GetAwaiter().GetResult();   // Ctrl+C or SIGTERM (the host's console lifetime)
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return cmd;
    }

    static (string Name, string Dir) ParseAdapter(string s)
    {
        int eq = s.IndexOf('=');
        if (eq <= 0 || eq == s.Length - 1) throw new PeftException($"--adapter: expected NAME=DIR, got '{s}'");
        return (s[..eq], s[(eq + 1)..]);
    }
}
