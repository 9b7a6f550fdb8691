// One base model, two adapters, the same prompt answered with each of them at the same time: every request runs in its
// own inference session, so one loaded model serves concurrent requests with different adapters.
// Usage: dotnet run --project samples/TwoAdapters -- model-dir adapter-dir-a adapter-dir-b
using PeftSharp.Compute;
using PeftSharp.Inference;
using PeftSharp.Peft;

if (args.Length != 3)
{
    Console.Error.WriteLine("usage: TwoAdapters <model-dir> <adapter-dir-a> <adapter-dir-b>");
    return 2;
}
using var compute = ComputeContext.CreateCpu();
using var model = PeftModel.Load(args[0], compute);
model.LoadAdapter(args[1], "a");
model.LoadAdapter(args[2], "b");

var generator = new TextGenerator(model, compute);
var prompt = "Verse: Jesus wept.\nTestament:";
var options = new GenerationOptions { MaxNewTokens = 8, Stop = ["\n"] };
string?[] adapters = [null, "a", "b"];
var answers = await Task.WhenAll(adapters.Select(a => Task.Run(() => generator.Complete(prompt, a, options))));
for (int i = 0; i < adapters.Length; i++) Console.WriteLine($"{adapters[i] ?? "base",-5} → {answers[i].Trim()}");

// The same answers one after another: concurrency changes nothing.
for (int i = 0; i < adapters.Length; i++)
    if (generator.Complete(prompt, adapters[i], options) != answers[i])
    {
        Console.Error.WriteLine($"adapter {adapters[i] ?? "base"}: the concurrent answer differs from the sequential one");
        return 1;
    }
Console.WriteLine("concurrent answers equal the sequential ones");
return 0;
