using PeftSharp.Cli.Commands;

namespace PeftSharp.Tests.Cli;

/// <summary>`peft bench loftq --svd`: krylov (the default) or exact; anything else is a clear error, not a stack trace.</summary>
public class BenchLoftQCommandTests
{
    [Fact]
    public void Unknown_svd_is_refused_with_exit_code_1()
    {
        Assert.Equal(1, new BenchLoftQCommand().Build().Parse(["--model", "none", "--random-layers", "0", "--svd", "qr"]).Invoke());
    }

    [Theory]
    [InlineData("krylov")]
    [InlineData("exact")]
    public void Both_svds_are_accepted(string svd)
    {
        // Nothing to measure (no model, no random layers): only the option parsing and validation run.
        Assert.Equal(0, new BenchLoftQCommand().Build().Parse(["--model", "none", "--random-layers", "0", "--svd", svd]).Invoke());
    }
}
