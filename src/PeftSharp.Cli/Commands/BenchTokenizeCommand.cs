using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench tokenize --tokenizer &lt;dir&gt;`: single-thread encode throughput on ≥ 1 MB of mixed text
/// (built deterministically from <see cref="BenchCorpus"/>, or read from --file), split into ~4 KB documents as a
/// data set would be. Warm-up passes (JIT tiering and the BPE word cache; the first is reported as cold_mb_per_s),
/// then the median of --runs timed passes.
/// </summary>
internal sealed class BenchTokenizeCommand : IBenchCommand
{
    public Command Build()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "model folder or tokenizer.json", Required = true };
        var file = new Option<string?>("--file") { Description = "UTF-8 text file to encode instead of the built-in mixed corpus" };
        var mb = new Option<double>("--mb") { Description = "size of the built-in corpus in MB", DefaultValueFactory = _ => 1.0 };
        var runs = new Option<int>("--runs") { Description = "timed passes (median reported)", DefaultValueFactory = _ => 5 };
        var cmd = new Command("tokenize", "tokenizer encode throughput, single thread");
        foreach (var o in new Option[] { tokenizer, file, mb, runs }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            var tok = HfTokenizer.Load(pr.GetValue(tokenizer)!);
            string? f = pr.GetValue(file);
            if (f != null && !File.Exists(f)) throw new PeftException($"{f}: file not found");
            string text = f != null ? File.ReadAllText(f) : BenchCorpus.Build((int)(Math.Max(0.01, pr.GetValue(mb)) * 1_000_000));
            var docs = BenchCorpus.Documents(text, 4096);
            long bytes = Encoding.UTF8.GetByteCount(text);

            long tokens = 0;
            var sw = Stopwatch.StartNew();
            foreach (var d in docs) tokens += tok.Encode(d, addSpecial: false).Length;
            double coldSeconds = sw.Elapsed.TotalSeconds;
            // Let tiered JIT reach optimized code: at least two more passes and about a second.
            sw.Restart();
            for (int w = 0; w < 2 || sw.Elapsed.TotalSeconds < 1.0; w++)
                foreach (var d in docs) tok.Encode(d, addSpecial: false);

            var times = new List<double>();
            var cpuTimes = new List<double>();
            var process = Process.GetCurrentProcess();
            for (int r = 0; r < Math.Max(1, pr.GetValue(runs)); r++)
            {
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                sw.Restart();
                foreach (var d in docs) tok.Encode(d, addSpecial: false);
                times.Add(sw.Elapsed.TotalSeconds);
                process.Refresh();
                cpuTimes.Add((process.TotalProcessorTime - cpu0).TotalSeconds);
            }
            times.Sort();
            cpuTimes.Sort();
            double median = times[times.Count / 2];
            double cpuMedian = Math.Max(1e-6, cpuTimes[cpuTimes.Count / 2]);
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bench = "tokenize",
                tokenizer = tok.Name,
                mb_per_s = Math.Round(bytes / median / 1e6, 2),
                cold_mb_per_s = Math.Round(bytes / coldSeconds / 1e6, 2),
                // Process CPU time of the timed passes: close to wall time on an idle machine, steadier on a busy one.
                cpu_mb_per_s = Math.Round(bytes / cpuMedian / 1e6, 2),
                bytes,
                tokens,
                runs = times.Count,
                median_s = Math.Round(median, 4),
                threads = 1,
            }, TokenizeCommand.Json));
            return 0;
        }));
        return cmd;
    }
}

/// <summary>Deterministic mixed text for the tokenizer benchmark: prose, code, numbers, whitespace runs, CJK, emoji,
/// Arabic/Hindi, combining marks, with seeded variation so the BPE word cache does not see only repeats.</summary>
internal static class BenchCorpus
{
    static readonly string[] Snippets =
    [
        "The committee reviewed the proposal in detail and, after a long discussion, agreed to postpone the vote until the next meeting.",
        "Low-rank adapters freeze the pretrained weights and learn a small update, which keeps memory use modest during fine-tuning.",
        "She opened the window; the morning air was cold, and somewhere below a dog barked twice before the street fell silent again.",
        "def train(model, data, epochs=3):\n    for epoch in range(epochs):\n        for batch in data:\n            loss = model(batch)\n            loss.backward()\n",
        "public static int Sum(ReadOnlySpan<int> xs)\n{\n    int s = 0;\n    foreach (var x in xs) s += x;\n    return s;\n}\n",
        "{\"id\": 1234, \"name\": \"example\", \"tags\": [\"a\", \"b\"], \"score\": 0.875}\n",
        "    \n\t\tindented block\n        with spaces\n\n\n",
        "東京都は日本の首都であり、世界有数の大都市です。人口は約千四百万人。",
        "机器学习模型需要大量的数据进行训练，然后才能在实际任务中使用。",
        "모델을 미세 조정하면 특정 작업에서 성능이 향상됩니다.",
        "Привет! Это пример текста на русском языке для проверки токенизатора.",
        "مرحبا بكم في هذا المثال، نحن نختبر تقسيم النص إلى رموز.",
        "यह एक उदाहरण वाक्य है जो टोकनाइज़र की जाँच करता है।",
        "Emoji time 🎉🔥👍🏽 and families 👨‍👩‍👧‍👦 plus flags 🇫🇷🇯🇵 ❤️",
        "Café, naïve, façade, jalapeño, Zoë, résumé — déjà vu.",
        "Results: accuracy 93.41%, loss 0.0231, lr 2e-4, step 12800/50000, eta 01:23:45.",
    ];

    public static string Build(int minBytes)
    {
        var rng = new Random(1234);
        var sb = new StringBuilder(minBytes + 4096);
        int bytes = 0;
        while (bytes < minBytes)
        {
            string s = Snippets[rng.Next(Snippets.Length)];
            // Vary numbers and words so pre-tokens are not all cache hits.
            string piece = rng.Next(4) switch
            {
                0 => s + $" #{rng.Next(1_000_000)} ",
                1 => s.Replace("the", rng.Next(3) == 0 ? "The" : "the") + $" ({rng.NextDouble():F4})\n",
                2 => s + " w" + rng.Next(100000).ToString("x") + "\n",
                _ => s + "\n",
            };
            sb.Append(piece);
            bytes += Encoding.UTF8.GetByteCount(piece);
        }
        return sb.ToString();
    }

    /// <summary>Cuts the text into documents of about <paramref name="chars"/> characters at line ends.</summary>
    public static List<string> Documents(string text, int chars)
    {
        var docs = new List<string>();
        int start = 0;
        while (start < text.Length)
        {
            int end = Math.Min(text.Length, start + chars);
            if (end < text.Length)
            {
                int nl = text.IndexOf('\n', end);
                end = nl < 0 ? text.Length : nl + 1;
            }
            docs.Add(text[start..end]);
            start = end;
        }
        return docs;
    }
}
