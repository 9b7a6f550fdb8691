namespace PeftSharp.Data;

/// <summary>Deterministic permutations from a seed (SplitMix64 + Fisher–Yates), the same on every platform and .NET version.</summary>
internal static class SeededShuffle
{
    public static int[] Permutation(int n, ulong seed)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        ulong state = seed;
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(Next(ref state) % (ulong)(i + 1));
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    /// <summary>The seed for one epoch of a run seed.</summary>
    public static ulong EpochSeed(int seed, int epoch) => ((ulong)(uint)seed << 32) ^ (ulong)(uint)epoch ^ 0x5DEECE66DUL;

    private static ulong Next(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
