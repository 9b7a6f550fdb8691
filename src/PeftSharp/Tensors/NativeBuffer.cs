using System.Runtime.InteropServices;

namespace PeftSharp.Tensors;

/// <summary>
/// A 64-byte-aligned block of native memory (cache-line and AVX-512 friendly; llm.c measured +8–10 % from alignment).
/// Zero-filled on allocation. Owned: dispose to free.
/// </summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    public const int Alignment = 64;
    static long s_liveBytes;

    byte* _ptr;
    public long ByteLength { get; }

    /// <summary>Bytes currently held by all live native buffers (for memory accounting).</summary>
    public static long LiveBytes => Interlocked.Read(ref s_liveBytes);

    public NativeBuffer(long byteLength)
    {
        if (byteLength < 0) throw new ArgumentOutOfRangeException(nameof(byteLength));
        ByteLength = byteLength;
        nuint n = (nuint)Math.Max(byteLength, Alignment);
        _ptr = (byte*)NativeMemory.AlignedAlloc(n, Alignment);
        NativeMemory.Clear(_ptr, n);
        Interlocked.Add(ref s_liveBytes, byteLength);
    }

    public bool IsDisposed => _ptr == null;

    public byte* Pointer => _ptr != null ? _ptr : throw new ObjectDisposedException(nameof(NativeBuffer));

    public Span<T> AsSpan<T>() where T : unmanaged
        => new(Pointer, checked((int)(ByteLength / sizeof(T))));

    public void Dispose()
    {
        if (_ptr == null) return;
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        Interlocked.Add(ref s_liveBytes, -ByteLength);
        GC.SuppressFinalize(this);
    }

    ~NativeBuffer() => Dispose();
}
