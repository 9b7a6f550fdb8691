using System.CommandLine;
using PeftSharp.Hub;
using Spectre.Console;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft download org/name [--revision R] [--include GLOB …]`: fetches a model's files from the Hugging Face Hub
/// (HF_ENDPOINT, HF_TOKEN) into the Hugging Face cache (HF_HUB_CACHE / HF_HOME), where every command then finds it
/// by its id. Resumable, checked against the Hub's checksums; with HF_HUB_OFFLINE=1 it only looks in the cache.
/// </summary>
internal sealed class DownloadCommand : ICliCommand
{
    public Command Build()
    {
        var id = new Argument<string>("model") { Description = "Hugging Face model id, org/name (optionally org/name@revision)" };
        var revision = new Option<string?>("--revision") { Description = "branch, tag or commit (default: main, or the @revision of the id)" };
        var include = new Option<string[]>("--include")
        {
            Description = $"only files matching these globs (default: {string.Join(" ", HubDownloader.DefaultPatterns)})",
            AllowMultipleArgumentsPerToken = true,
        };
        var cmd = new Command("download", "download a model from the Hugging Face Hub into the local Hugging Face cache");
        cmd.Arguments.Add(id);
        cmd.Options.Add(revision);
        cmd.Options.Add(include);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            var modelId = HubModelId.Parse(pr.GetValue(id)!, pr.GetValue(revision));
            var env = HubEnvironment.From();
            using var http = HubClient.CreateHttpClient();
            var downloader = new HubDownloader(new HubClient(http, env), env);
            var patterns = pr.GetValue(include) is { Length: > 0 } p ? p : null;
            var result = Run(downloader, modelId, patterns, live: !Console.IsErrorRedirected && !Console.IsOutputRedirected);
            if (result.Offline) Console.Error.WriteLine($"HF_HUB_OFFLINE is set: using the cached {modelId}");
            else Console.Error.WriteLine($"{modelId} @ {result.Commit[..12]}: {result.Files.Count} files, {result.BytesFetched / 1048576.0:F1} MiB fetched");
            Console.WriteLine(result.SnapshotDir);
            return 0;
        }));
        return cmd;
    }

    static DownloadResult Run(HubDownloader downloader, HubModelId id, IReadOnlyList<string>? patterns, bool live)
    {
        if (!live)
            return downloader.DownloadAsync(id, patterns, new PlainProgress()).GetAwaiter().GetResult();
        DownloadResult result = null!;
        AnsiConsole.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                // Progress<T> would post to the thread pool; this reports synchronously on the download's thread.
                var progress = new SyncProgress(p =>
                {
                    if (!tasks.TryGetValue(p.File, out var t))
                        tasks[p.File] = t = ctx.AddTask(Markup.Escape(p.File + (p.FromCache ? " (cached)" : "")), maxValue: Math.Max(1, p.Size ?? 1));
                    if (p.Size is long size) t.MaxValue = Math.Max(1, size);
                    t.Value = p.Done;
                    if (p.Finished) { t.Value = t.MaxValue; t.StopTask(); }
                });
                result = downloader.DownloadAsync(id, patterns, progress).GetAwaiter().GetResult();
            });
        return result;
    }

    sealed class SyncProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }

    /// <summary>One line per finished file (logs, pipes).</summary>
    sealed class PlainProgress : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress p)
        {
            if (p.Finished) Console.Error.WriteLine($"{p.File}: {p.Done:N0} bytes{(p.FromCache ? " (already in the cache)" : "")}");
        }
    }
}
