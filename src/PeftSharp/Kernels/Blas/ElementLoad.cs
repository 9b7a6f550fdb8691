using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// Reads operand elements of one storage dtype as float32. The packing routines are generic over this so each
/// dtype gets its own specialised loop: BF16/F16 are widened on the way into the packed panel, never copied whole.
/// </summary>
unsafe interface IElementLoad
{
    static abstract int Size { get; }
    /// <summary>Element i of p widened to float.</summary>
    static abstract float Load1(byte* p, long i);
    /// <summary>Elements i..i+7 of p widened to float.</summary>
    static abstract Vector256<float> Load8(byte* p, long i);
}

readonly unsafe struct F32Load : IElementLoad
{
    public static int Size => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p, long i) => ((float*)p)[i];
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* p, long i) => Vector256.Load((float*)p + i);
}

/// <summary>bfloat16 is the top half of a float32: zero-extend to 32 bits and shift left 16.</summary>
readonly unsafe struct Bf16Load : IElementLoad
{
    public static int Size => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p, long i) => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* p, long i)
    {
        if (Avx2.IsSupported)
            return Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)p + i), 16).AsSingle();
        var w = Vector256.WidenLower(Vector128.Load((ushort*)p + i).ToVector256Unsafe());
        return Vector256.ShiftLeft(w, 16).AsSingle();
    }
}

/// <summary>IEEE half: converted element by element (F16 weights are rare for Llama checkpoints).</summary>
readonly unsafe struct F16Load : IElementLoad
{
    public static int Size => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p, long i) => (float)((Half*)p)[i];
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* p, long i)
    {
        Half* h = (Half*)p + i;
        return Vector256.Create((float)h[0], (float)h[1], (float)h[2], (float)h[3],
                                (float)h[4], (float)h[5], (float)h[6], (float)h[7]);
    }
}
