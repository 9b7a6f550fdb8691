using PeftSharp;
using PeftSharp.Fuzz;
using SharpFuzz;

// PeftSharp.Fuzz TARGET            run under afl-fuzz (input on stdin, persistent mode)
// PeftSharp.Fuzz TARGET FILE...    replay inputs (a finding, a corpus) outside the fuzzer; prints what each gives
// PeftSharp.Fuzz make-gguf-seed PATH   writes the GGUF harness's seed file
if (args.Length == 2 && args[0] == "make-gguf-seed")
{
    GgufSeed.Write(args[1]);
    return 0;
}
if (args.Length == 0 || !Harnesses.All.TryGetValue(args[0], out var harness))
{
    Console.Error.WriteLine($"usage: PeftSharp.Fuzz TARGET [FILE...]; targets: {string.Join(", ", Harnesses.All.Keys)}");
    return 2;
}
string scratch = Path.Combine(Path.GetTempPath(), $"peft-fuzz-{args[0]}-{Environment.ProcessId}");
Directory.CreateDirectory(scratch);
try
{
    if (args.Length > 1)
    {
        int bad = 0;
        foreach (var file in args.Skip(1))
        {
            try { harness(File.ReadAllBytes(file), scratch); Console.WriteLine($"{file}: accepted"); }
            catch (PeftException e) { Console.WriteLine($"{file}: refused: {e.Message}"); }
            catch (Exception e) { Console.WriteLine($"{file}: FINDING {e.GetType().Name}: {e.Message}"); bad++; }
        }
        return bad == 0 ? 0 : 1;
    }
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        try { harness(ms.ToArray(), scratch); }
        catch (PeftException) { }   // bad input refused with a clear error: the expected outcome
    });
    return 0;
}
finally
{
    try { Directory.Delete(scratch, true); } catch (IOException) { }
}
