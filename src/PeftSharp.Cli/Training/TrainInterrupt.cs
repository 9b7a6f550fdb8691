using System.Runtime.InteropServices;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM during `peft train`: the first asks the trainer to stop between steps (it writes a
/// checkpoint on the way out); a second exits at once with 130, leaving the last complete checkpoint as it is.
/// </summary>
public sealed class TrainInterrupt : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly List<PosixSignalRegistration> _registrations = [];
    int _signals;

    public CancellationToken Token => _cts.Token;

    public TrainInterrupt()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
    }

    void OnSignal(PosixSignalContext ctx)
    {
        ctx.Cancel = true;   // no default termination: the trainer stops itself
        if (Interlocked.Increment(ref _signals) == 1)
        {
            Console.Error.WriteLine($"\n{ctx.Signal}: stopping after the current step and writing a checkpoint (press Ctrl-C again to quit at once)");
            _cts.Cancel();
        }
        else
        {
            Console.Error.WriteLine($"\n{ctx.Signal} again: exiting now; the last complete checkpoint is kept");
            Environment.Exit(130);
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
    }
}
