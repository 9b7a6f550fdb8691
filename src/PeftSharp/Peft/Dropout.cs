namespace PeftSharp.Peft;

/// <summary>
/// Counter-based dropout masks: keep(i) is a pure function of (seed, call key, element index), so the mask can be
/// regenerated in backward and in an activation-recompute forward instead of being stored.
/// </summary>
internal static class Dropout
{
    /// <summary>True if element <paramref name="index"/> is kept (probability 1 − p).</summary>
    public static bool Keep(ulong key, long index, float p)
    {
        ulong z = key + (ulong)index * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        // Top 24 bits → uniform in [0,1).
        return (z >> 40) * (1.0f / (1 << 24)) >= p;
    }

    /// <summary>dst = mask ⊙ src / (1 − p) over n·width elements.</summary>
    public static unsafe void Apply(ulong key, float p, float* src, float* dst, long count)
    {
        float scale = 1f / (1f - p);
        for (long i = 0; i < count; i++) dst[i] = Keep(key, i, p) ? src[i] * scale : 0f;
    }

    public static ulong Key(ulong seed, ulong step, int moduleId) =>
        seed * 0xD1B54A32D192ED03UL ^ step * 0xABC98388FB8FAC03UL ^ (ulong)moduleId * 0x8CB92BA72F3D8DD7UL;
}
