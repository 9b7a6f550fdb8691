namespace PeftSharp.Compute;

/// <summary>A parsed device name: "cpu", "cuda" (device 0) or "cuda:N".</summary>
internal readonly record struct DeviceName(bool IsCuda, int Index)
{
    public static DeviceName Cpu => new(false, 0);

    /// <summary>Parses <paramref name="text"/>; a bad name is a <see cref="PeftException"/> saying what is accepted.</summary>
    public static DeviceName Parse(string? text)
    {
        var t = (text ?? "").Trim().ToLowerInvariant();
        if (t == "cpu") return Cpu;
        if (t == "cuda") return new(true, 0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t.AsSpan(5), System.Globalization.NumberStyles.None, null, out int n))
            return new(true, n);
        throw new PeftException($"device '{text}': expected cpu, cuda or cuda:N (N = 0, 1, …)");
    }

    public override string ToString() => IsCuda ? $"cuda:{Index}" : "cpu";
}
