using System.Text.Json;

namespace PeftSharp.Tokenization;

/// <summary>A tokenizer.json "post_processor": adds the special tokens (BOS/EOS) around one encoded sequence.</summary>
internal abstract class PostProcessor
{
    public abstract int[] Process(List<int> ids, bool addSpecial);

    public static PostProcessor? FromJson(JsonElement e, string file)
    {
        if (e.ValueKind == JsonValueKind.Null || e.ValueKind == JsonValueKind.Undefined) return null;
        string type = JsonUtil.Type(e, file, "post_processor");
        switch (type)
        {
            case "ByteLevel": return new IdentityPostProcessor(); // only adjusts offsets; ids unchanged
            case "TemplateProcessing": return TemplatePostProcessor.Parse(e, file);
            case "Sequence":
                return new SequencePostProcessor(e.GetProperty("processors").EnumerateArray()
                    .Select(x => FromJson(x, file)).OfType<PostProcessor>().ToArray());
            case "BertProcessing":
            case "RobertaProcessing":
            {
                int cls = e.GetProperty("cls")[1].GetInt32(), sep = e.GetProperty("sep")[1].GetInt32();
                return new TemplatePostProcessor([[cls], null, [sep]]);
            }
            default: throw new PeftException($"{file}: unsupported post_processor type '{type}'");
        }
    }
}

internal sealed class IdentityPostProcessor : PostProcessor
{
    public override int[] Process(List<int> ids, bool addSpecial) => ids.ToArray();
}

internal sealed class SequencePostProcessor(PostProcessor[] steps) : PostProcessor
{
    public override int[] Process(List<int> ids, bool addSpecial)
    {
        foreach (var s in steps) ids = [.. s.Process(ids, addSpecial)];
        return ids.ToArray();
    }
}

/// <summary>TemplateProcessing "single": a list of special-token id runs and the sequence itself (null entry).</summary>
internal sealed class TemplatePostProcessor(int[]?[] single) : PostProcessor
{
    public IReadOnlyList<int[]?> Single => single;

    public static TemplatePostProcessor Parse(JsonElement e, string file)
    {
        var specials = new Dictionary<string, int[]>();
        if (e.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
            foreach (var p in st.EnumerateObject())
                specials[p.Name] = p.Value.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var items = new List<int[]?>();
        foreach (var item in e.GetProperty("single").EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out _)) items.Add(null);
            else if (item.TryGetProperty("SpecialToken", out var sp))
            {
                string id = sp.GetProperty("id").GetString()!;
                if (!specials.TryGetValue(id, out var ids))
                    throw new PeftException($"{file}: post_processor template uses special token \"{id}\" missing from special_tokens");
                items.Add(ids);
            }
            else throw new PeftException($"{file}: post_processor template item must be Sequence or SpecialToken, got {JsonUtil.Short(item)}");
        }
        return new TemplatePostProcessor(items.ToArray());
    }

    public override int[] Process(List<int> ids, bool addSpecial)
    {
        if (!addSpecial) return ids.ToArray();
        var result = new List<int>(ids.Count + 4);
        foreach (var item in single)
            if (item == null) result.AddRange(ids);
            else result.AddRange(item);
        return result.ToArray();
    }
}
