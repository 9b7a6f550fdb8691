using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>
/// Transient float32 buffers for adapter forward/backward (dropped inputs, scaled gradients), shared by all adapter
/// layers because only one layer computes at a time. They grow to the largest request and are then reused.
/// </summary>
internal static unsafe class PeftScratch
{
    static readonly NativeBuffer?[] s_slots = new NativeBuffer?[5];

    public const int DroppedInput = 0, DroppedInputGrad = 1, ScaledGrad = 2, RankGrad = 3, NegatedGrad = 4;

    public static float* Get(int slot, long floats)
    {
        var b = s_slots[slot];
        if (b == null || b.ByteLength < floats * 4)
        {
            b?.Dispose();
            b = s_slots[slot] = new NativeBuffer(Math.Max(floats, 1024) * 4);
        }
        return (float*)b.Pointer;
    }
}
