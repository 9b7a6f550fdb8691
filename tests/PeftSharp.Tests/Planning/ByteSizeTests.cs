using PeftSharp.Planning;

namespace PeftSharp.Tests.Planning;

/// <summary>--budget strings: decimal KB/MB/GB/TB = powers of 1000; KiB/MiB/GiB/TiB and bare K/M/G/T = powers of 1024.</summary>
public class ByteSizeTests
{
    [Theory]
    [InlineData("24GB", 24_000_000_000L)]
    [InlineData("24 GiB", 24L << 30)]
    [InlineData("24gib", 24L << 30)]
    [InlineData("512MB", 512_000_000L)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("2T", 2L << 40)]
    [InlineData("1TB", 1_000_000_000_000L)]
    [InlineData("4096", 4096L)]
    [InlineData("100 B", 100L)]
    [InlineData(" 8 k ", 8192L)]
    public void Parses(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text));

    [Theory]
    [InlineData("24XB", "unknown unit \"XB\"")]
    [InlineData("GB", "cannot read")]
    [InlineData("", "cannot read")]
    [InlineData("-1GB", "cannot read")]
    [InlineData("0GB", "must be positive")]
    [InlineData("1,5GB", "cannot read")]
    public void RejectsWithTheOptionNamed(string text, string fragment)
    {
        var e = Assert.Throws<PeftException>(() => ByteSize.Parse(text, "--budget"));
        Assert.StartsWith("--budget:", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void FormatsInBinaryUnits()
    {
        Assert.Equal("22.35 GiB", ByteSize.Format(24_000_000_000L));
        Assert.Equal("512.0 MiB", ByteSize.Format(512L << 20));
    }
}
