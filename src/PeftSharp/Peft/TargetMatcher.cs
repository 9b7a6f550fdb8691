using System.Text.RegularExpressions;

namespace PeftSharp.Peft;

/// <summary>
/// PEFT's rules for which modules get an adapter and with which rank/alpha (tuners_utils.py check_target_module_exists,
/// other.py get_pattern_key). Keys are full module names of the base model, e.g. model.layers.3.self_attn.q_proj.
/// </summary>
internal sealed class TargetMatcher
{
    readonly LoraConfig _c;
    readonly string[] _defaults;

    /// <summary><paramref name="defaultTargets"/>: the model type's PEFT default when target_modules is not given.</summary>
    public TargetMatcher(LoraConfig config, string[]? defaultTargets = null)
    {
        _c = config;
        _defaults = defaultTargets ?? LoraConfig.DefaultTargets;
    }

    static bool ListMatch(IEnumerable<string> items, string key) => items.Any(t => key == t || key.EndsWith("." + t, StringComparison.Ordinal));
    static bool FullMatch(string pattern, string key) => Regex.IsMatch(key, $"^(?:{pattern})$");

    /// <summary>True if module <paramref name="key"/> (a linear layer of the model, not lm_head) gets an adapter.</summary>
    public bool IsTarget(string key)
    {
        if (_c.ExcludeModulesRegex != null && FullMatch(_c.ExcludeModulesRegex, key)) return false;
        if (_c.ExcludeModules != null && ListMatch(_c.ExcludeModules, key)) return false;
        if (_c.ModulesToSave != null && _c.ModulesToSave.Any(m => Regex.IsMatch(key, $"(^|.*\\.){Regex.Escape(m)}($|\\..*)"))) return false;

        bool match;
        if (_c.TargetModulesRegex != null)
            match = string.Equals(_c.TargetModulesRegex, "all-linear", StringComparison.OrdinalIgnoreCase) || FullMatch(_c.TargetModulesRegex, key);
        else
            match = ListMatch(_c.TargetModules ?? _defaults, key);
        if (!match) return false;

        if (_c.LayersToTransform is { Count: > 0 } layers)
        {
            var m = _c.LayersPattern == null
                ? Regex.Match(key, @"^.*?\.[^.]*\.(\d+)\.")
                : Regex.Match(key, $@"^.*?\.{_c.LayersPattern}\.(\d+)\.");
            if (!m.Success || !layers.Contains(int.Parse(m.Groups[1].Value))) return false;
        }
        return true;
    }

    /// <summary>Rank for a module: the first rank_pattern key (in file order) matching (.*\.)?(pattern)$, else r.</summary>
    public int RankFor(string key)
    {
        foreach (var (pattern, r) in _c.RankPattern) if (PatternMatch(pattern, key)) return r;
        return _c.R;
    }

    public double AlphaFor(string key)
    {
        foreach (var (pattern, a) in _c.AlphaPattern) if (PatternMatch(pattern, key)) return a;
        return _c.LoraAlpha;
    }

    static bool PatternMatch(string pattern, string key) => Regex.IsMatch(key, $"^(.*\\.)?({pattern})$");

    /// <summary>The explicit list of module names targeted but not linear layers of the model (lm_head, embed_tokens …).</summary>
    public IEnumerable<string> UnsupportedExplicitTargets(IEnumerable<string> linearModules)
    {
        if (_c.TargetModules == null) yield break;
        var names = linearModules.ToList();
        foreach (var t in _c.TargetModules)
            if (!names.Any(n => n == t || n.EndsWith("." + t, StringComparison.Ordinal)) && t is "lm_head" or "embed_tokens")
                yield return t;
    }
}
