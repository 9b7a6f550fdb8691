using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>
/// Transient float32 buffers for adapter forward/backward (dropped inputs, scaled gradients), shared by all adapter
/// layers because only one layer computes at a time. They grow to the largest request and are then reused.
/// Per calling thread: two models trained or evaluated at once on different threads (tests, servers) must not
/// share them.
/// </summary>
internal static unsafe class PeftScratch
{
    [ThreadStatic] static NativeBuffer?[]? t_slots;

    public const int DroppedInput = 0, DroppedInputGrad = 1, ScaledGrad = 2, RankGrad = 3, NegatedGrad = 4;

    public static float* Get(int slot, long floats)
    {
        var slots = t_slots ??= new NativeBuffer?[5];
        var b = slots[slot];
        if (b == null || b.ByteLength < floats * 4)
        {
            b?.Dispose();
            b = slots[slot] = new NativeBuffer(Math.Max(floats, 1024) * 4);
        }
        return (float*)b.Pointer;
    }
}
