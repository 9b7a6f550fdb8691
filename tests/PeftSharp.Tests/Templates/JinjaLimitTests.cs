using PeftSharp.Templates;

namespace PeftSharp.Tests.Templates;

/// <summary>Issue #13's template findings: each one ends in a PeftException that says what limit was hit,
/// never a stack overflow, a hang or gigabytes of output.</summary>
public class JinjaLimitTests
{
    private static PeftException Refused(string src) =>
        Assert.ThrowsAny<PeftException>(() => new JinjaTemplate(src).Render(new Dictionary<string, object?>()));

    [Fact]
    public void RecursiveMacroIsRefusedWithADepthError()
    {
        var e = Refused("{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}");
        Assert.Contains("recursion deeper than", e.Message);
    }

    [Fact]
    public void BoundedRecursionStillWorks() =>
        Assert.Equal("3210", new JinjaTemplate("{% macro f(x) %}{{ x }}{% if x > 0 %}{{ f(x - 1) }}{% endif %}{% endmacro %}{{ f(3) }}")
            .Render(new Dictionary<string, object?>()));

    [Theory]
    [InlineData(20_000)]
    [InlineData(250)]
    public void DeeplyNestedParenthesesAreRefusedByTheParser(int depth)
    {
        var e = Refused("{{ " + new string('(', depth) + "1" + new string(')', depth) + " }}");
        Assert.Contains("nested deeper than", e.Message);
    }

    [Fact]
    public void DeeplyNestedBlocksAndUnaryChainsAreRefused()
    {
        Assert.Contains("nested deeper", Refused(string.Concat(Enumerable.Repeat("{% if 1 %}", 5000)) + "x").Message);
        Assert.Contains("nested deeper", Refused("{{ " + string.Concat(Enumerable.Repeat("not ", 5000)) + "1 }}").Message);
        Assert.Contains("nested deeper", Refused("{{ " + new string('-', 5000) + "1 }}").Message);
    }

    [Fact]
    public void LongFlatExpressionHitsTheRenderDepthNotTheStack()
    {
        var e = Refused("{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 20_000)) + " }}");
        Assert.Contains("deeper than", e.Message);
    }

    [Fact]
    public void HugeRangeIsRefusedBeforeAllocating() =>
        Assert.Contains("range() of 1,000,000,000 numbers", Refused("{% for i in range(1000000000) %}x{% endfor %}").Message);

    [Fact]
    public void NestedLoopsRunOutOfSteps() =>
        Assert.Contains("steps", Refused("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").Message);

    [Fact]
    public void CustomStepBudgetIsHonoured()
    {
        var program = "{% for i in range(50) %}{{ i }}{% endfor %}";
        var vars = new Dictionary<string, object?>();
        Assert.Throws<PeftException>(() => new JinjaInterpreter(vars, new JinjaLimits(MaxSteps: 20)).Render(JinjaParser.Parse(program)));
        Assert.EndsWith("49", new JinjaInterpreter(vars, new JinjaLimits(MaxSteps: 1000)).Render(JinjaParser.Parse(program)));
    }

    [Theory]
    [InlineData("{{ 'x' * 1000000000 }}", "'string' * n")]
    [InlineData("{% set s = 'xxxxxxxxxxxxxxxx' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}", "limit")]
    [InlineData("{% set l = [1] %}{% for i in range(40) %}{% set l = l + l %}{% endfor %}{{ l | length }}", "a list")]
    [InlineData("{{ ('x' * 100000).replace('', 'y' * 1000) }}", "replace()")]
    [InlineData("{{ 'a' | indent(2000000000) }}", "indent()")]
    [InlineData("{{ [[1]] | tojson(indent=2000000000) }}", "tojson")]
    [InlineData("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "the rendered text")]
    public void OversizedStringsAndListsAreRefused(string src, string what) =>
        Assert.Contains(what, Refused(src).Message);

    [Theory]
    [InlineData("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}")]
    [InlineData("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns | tojson }}")]
    [InlineData("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l == [ns.l[0], ns.l[1]] }}")]
    [InlineData("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}")]
    [InlineData("{% set ns = namespace(l=[1]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l | tojson }}")]
    public void SelfContainingOrExplodingValuesAreRefused(string src) =>
        Assert.Contains("chat template", Refused(src).Message);

    [Theory]
    [InlineData("{{ 2 ** 1000000000000 }}")]
    [InlineData("{{ 9223372036854775807 + 1 }}")]
    [InlineData("{{ 4611686018427387904 * 4 }}")]
    public void IntegerOverflowIsAnErrorNotAWrapOrAHang(string src) =>
        Assert.Contains("64 bits", Refused(src).Message);

    [Fact]
    public void IntegerPowerStillExact() =>
        Assert.Equal("1024 1 -27", new JinjaTemplate("{{ 2 ** 10 }} {{ 5 ** 0 }} {{ (-3) ** 3 }}").Render(new Dictionary<string, object?>()));
}
