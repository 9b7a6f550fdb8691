using System.Runtime.InteropServices;
using PeftSharp.Tensors;

namespace PeftSharp.Compute;

/// <summary>
/// Reusable 64-byte-aligned float buffers (GEMM packing, tile and dequantization scratch, a pass's saved activations),
/// safe to rent from any thread. A rent takes the smallest free buffer that fits, or allocates one: the pool ends up
/// with the buffers of the largest set of requests held at once, reused from then on.
/// </summary>
internal sealed unsafe class BufferPool : IDisposable
{
    readonly object _lock = new();
    readonly List<Block> _free = [];
    long _bytes;
    bool _disposed;

    /// <summary>Bytes currently allocated by the pool (free and rented).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public Lease Rent(long floats)
    {
        floats = Math.Max(floats, 16);
        Block? block = null;
        lock (_lock)
        {
            int best = -1;
            for (int i = 0; i < _free.Count; i++)
                if (_free[i].Floats >= floats && (best < 0 || _free[i].Floats < _free[best].Floats)) best = i;
            if (best >= 0) { block = _free[best]; _free.RemoveAt(best); }
        }
        // None fits: a new block. Smaller free blocks stay for the smaller requests that come back every step, so a
        // steady pattern of requests allocates only in its first step (freeing them here made sizes churn: measured).
        return new Lease(this, block ?? Allocate(floats));
    }

    Block Allocate(long floats)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), NativeBuffer.Alignment);
        Interlocked.Add(ref _bytes, floats * sizeof(float));
        return new Block(p, floats);
    }

    void Free(Block b)
    {
        NativeMemory.AlignedFree(b.Pointer);
        Interlocked.Add(ref _bytes, -b.Floats * sizeof(float));
    }

    void Return(Block b)
    {
        lock (_lock)
        {
            if (!_disposed) { _free.Add(b); return; }
        }
        Free(b);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var b in _free) Free(b);
            _free.Clear();
        }
    }

    internal sealed class Block(float* pointer, long floats)
    {
        public readonly float* Pointer = pointer;
        public readonly long Floats = floats;
    }

    /// <summary>A rented buffer; disposing it returns the buffer to the pool.</summary>
    public struct Lease : IDisposable
    {
        BufferPool? _pool;
        Block? _block;

        internal Lease(BufferPool pool, Block block) { _pool = pool; _block = block; }

        public readonly bool IsRented => _block != null;
        public readonly float* Pointer => _block!.Pointer;
        public readonly long Floats => _block?.Floats ?? 0;

        public void Dispose()
        {
            if (_block != null) _pool!.Return(_block);
            _block = null; _pool = null;
        }
    }
}
