using PeftSharp.Cli.Commands;
using PeftSharp.Planning;

namespace PeftSharp.Tests.Planning;

/// <summary>The square-matrix tables of /work/shared/seeds/004_056ac6d9ee0dd6ea.txt ("Calculating Parameter Efficiencies").</summary>
public class SquareModelTests
{
    // Copied from seed 004_056ac6d9ee0dd6ea.txt, table "Total Parameters | Matrix Dimension (D) | LoRA Parameters | Percentage", rank 1.
    public static TheoryData<string, long, long, string> SizeTable => new()
    {
        { "25", 5, 10, "40%" },
        { "100", 10, 20, "20%" },
        { "4B", 63246, 126492, "0.0032%" },
        { "7B", 83667, 167334, "0.0024%" },
        { "13B", 114018, 228036, "0.0018%" },
        { "80B", 282843, 565686, "0.0007%" },
        { "200B", 447214, 894428, "0.0004%" },
    };

    // Copied from seed 004_056ac6d9ee0dd6ea.txt, table "4B model with different ranks": Rank | D | LoRA Parameters | Percentage.
    public static TheoryData<int, long, long, string> RankTable => new()
    {
        { 4, 63246, 505968, "0.0126%" },
        { 8, 63246, 1011936, "0.0253%" },
        { 16, 63246, 2023872, "0.0506%" },
        { 32, 63246, 4047744, "0.1012%" },
        { 64, 63246, 8095488, "0.2024%" },
    };

    [Theory, MemberData(nameof(SizeTable))]
    public void SizeTableRowMatchesSeed(string size, long d, long lora, string percent)
    {
        var row = SquareModel.Compute(SquareModel.ParseCount(size), 1);
        Assert.Equal((d, lora, percent), (row.Dimension, row.LoraParameters, row.PercentText));
        Assert.Equal(size, SquareModel.FormatCount(row.TotalParameters));
    }

    [Theory, MemberData(nameof(RankTable))]
    public void RankTableRowMatchesSeed(int rank, long d, long lora, string percent)
    {
        var row = SquareModel.Compute(4_000_000_000, rank);
        Assert.Equal((d, lora, percent), (row.Dimension, row.LoraParameters, row.PercentText));
    }

    static string Squash(string s) => string.Join(" ", s.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void PrintedTablesCarryTheSeedRows()
    {
        var sizes = Squash(CalcReport.SquareText(CalcCommand.ParseParams("25,100,4B,7B,13B,80B,200B"), [1])).Split('\n');
        foreach (var (size, d, lora, pct) in SizeTable.Select(r => ((string)r[0], (long)r[1], (long)r[2], (string)r[3])))
            Assert.Contains($"{size} | {d} | {lora} | {pct}", sizes);
        var ranks = Squash(CalcReport.SquareText([4_000_000_000], CalcCommand.ParseRanks("4,8,16,32,64", "--ranks"))).Split('\n');
        foreach (var (r, d, lora, pct) in RankTable.Select(x => ((int)x[0], (long)x[1], (long)x[2], (string)x[3])))
            Assert.Contains($"{r} | {d} | {lora} | {pct}", ranks);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(25, 5)]
    [InlineData(26, 6)]
    [InlineData(999_999_999_999_999_999, 1_000_000_000)]   // just below 10^18 = (10^9)²
    [InlineData(1_000_000_000_000_000_000, 1_000_000_000)]
    [InlineData(1_000_000_000_000_000_001, 1_000_000_001)]
    public void DimensionIsTheExactCeilingOfTheSquareRoot(long p, long d) => Assert.Equal(d, SquareModel.Dimension(p));

    [Theory]
    [InlineData("25", 25L)]
    [InlineData("7e9", 7_000_000_000L)]
    [InlineData("1.5M", 1_500_000L)]
    [InlineData("135m", 135_000_000L)]
    [InlineData("2T", 2_000_000_000_000L)]
    public void CountsParse(string text, long expected) => Assert.Equal(expected, SquareModel.ParseCount(text));

    [Theory]
    [InlineData("4X")]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("2.5")]
    [InlineData("-3")]
    public void BadCountsNameTheOption(string text)
    {
        var e = Assert.Throws<PeftException>(() => SquareModel.ParseCount(text));
        Assert.StartsWith("--params:", e.Message);
    }
}
