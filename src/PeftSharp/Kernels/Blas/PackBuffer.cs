using System.Runtime.InteropServices;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// A 64-byte-aligned packing buffer kept per thread and reused across GEMM calls (grown, never shrunk), so a call
/// allocates nothing. One slot for packed A (each worker thread) and one for packed B (the calling thread).
/// If a thread re-enters while its slot is in use (a GEMM inside a parallel body that waits on another GEMM),
/// it gets a private buffer freed on dispose.
/// </summary>
sealed unsafe class PackBuffer : IDisposable
{
    [ThreadStatic] static PackBuffer? t_forA;
    [ThreadStatic] static PackBuffer? t_forB;

    readonly bool _pooled;
    float* _ptr;
    long _floats;
    bool _busy;

    PackBuffer(bool pooled) => _pooled = pooled;

    public float* Pointer => _ptr;

    public static PackBuffer RentA(long floats) => Rent(ref t_forA, floats);
    public static PackBuffer RentB(long floats) => Rent(ref t_forB, floats);

    static PackBuffer Rent(ref PackBuffer? slot, long floats)
    {
        var buf = slot ??= new PackBuffer(pooled: true);
        if (buf._busy) buf = new PackBuffer(pooled: false);
        buf.Ensure(floats);
        buf._busy = true;
        return buf;
    }

    void Ensure(long floats)
    {
        if (floats <= _floats) return;
        if (_ptr != null) NativeMemory.AlignedFree(_ptr);
        long grown = Math.Max(floats, _floats + _floats / 2);
        _ptr = (float*)NativeMemory.AlignedAlloc((nuint)(grown * sizeof(float)), NativeBuffer.Alignment);
        _floats = grown;
    }

    ~PackBuffer()
    {
        if (_ptr != null) NativeMemory.AlignedFree(_ptr);
    }

    public void Dispose()
    {
        _busy = false;
        if (_pooled) return;
        if (_ptr != null) NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        _floats = 0;
    }
}
