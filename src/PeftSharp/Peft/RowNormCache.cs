using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace PeftSharp.Peft;

/// <summary>
/// The last ‖W + s·B·A‖²_row computed for one DoRA adapter, kept while A, B and W are unchanged. DoRA needs this norm
/// in every forward, and W·Aᵀ costs r multiply-adds per weight: r times a one-token forward. Between the forwards of
/// serving, scoring and evaluation the adapter does not change. Validity is checked by 128-bit XxHash fingerprints of
/// A and B (one fast read of the factors, 32 bytes kept, and no version stamp that every writer of the factors would
/// have to bump) and by the base's generation, which the module bumps whenever W is rewritten.
/// </summary>
internal sealed class RowNormCache
{
    sealed record Entry(long BaseGeneration, UInt128 A, UInt128 B, double[] NormSq);

    volatile Entry? _entry;

    static UInt128 Fingerprint(ReadOnlySpan<float> x) => XxHash128.HashToUInt128(MemoryMarshal.AsBytes(x));

    /// <summary>Copies the cached norms into <paramref name="dst"/> when they were computed from these A, B and base
    /// generation.</summary>
    public bool TryGet(long baseGeneration, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> dst)
    {
        var e = _entry;
        if (e == null || e.BaseGeneration != baseGeneration || Fingerprint(a) != e.A || Fingerprint(b) != e.B) return false;
        e.NormSq.CopyTo(dst);
        return true;
    }

    public void Set(long baseGeneration, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<double> normSq) =>
        _entry = new Entry(baseGeneration, Fingerprint(a), Fingerprint(b), normSq.ToArray());
}
