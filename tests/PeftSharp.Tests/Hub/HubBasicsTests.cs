using System.Text;
using PeftSharp.Hub;

namespace PeftSharp.Tests.Hub;

/// <summary>Model ids, the cache's location rules, ETag checksums and globs.</summary>
public class HubBasicsTests
{
    [Theory]
    [InlineData("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", "main")]
    [InlineData("Qwen/Qwen2.5-0.5B@v1.0", "Qwen/Qwen2.5-0.5B", "v1.0")]
    [InlineData("gpt2", "gpt2", "main")]
    [InlineData("org/m@refs/pr/1", "org/m", "refs/pr/1")]
    public void Model_ids_parse(string text, string repo, string rev)
    {
        var id = HubModelId.Parse(text);
        Assert.Equal((repo, rev), (id.Repo, id.Revision));
    }

    [Theory]
    [InlineData("./models/x")]
    [InlineData("/abs/path")]
    [InlineData("a/b/c")]
    [InlineData("org/m@")]
    [InlineData("org--x/m")]
    [InlineData("")]
    public void Paths_and_malformed_ids_are_not_ids(string text) => Assert.Null(HubModelId.TryParse(text));

    [Fact]
    public void Cache_folder_follows_HF_HUB_CACHE_then_HF_HOME_then_XDG_CACHE_HOME()
    {
        var vars = new Dictionary<string, string?> { ["HF_HUB_CACHE"] = "/c/hub", ["HF_HOME"] = "/h", ["XDG_CACHE_HOME"] = "/x" };
        Assert.Equal("/c/hub", HubEnvironment.From(k => vars.GetValueOrDefault(k)).CacheDir);
        vars.Remove("HF_HUB_CACHE");
        Assert.Equal("/h/hub", HubEnvironment.From(k => vars.GetValueOrDefault(k)).CacheDir);
        vars.Remove("HF_HOME");
        Assert.Equal("/x/huggingface/hub", HubEnvironment.From(k => vars.GetValueOrDefault(k)).CacheDir);
        vars.Remove("XDG_CACHE_HOME");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var env = HubEnvironment.From(k => vars.GetValueOrDefault(k));
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), env.CacheDir);
        Assert.Equal("https://huggingface.co", env.Endpoint);
        Assert.False(env.Offline);

        vars["HF_ENDPOINT"] = "http://mirror:8080/";
        vars["HF_HUB_OFFLINE"] = "1";
        vars["HF_TOKEN"] = "hf_x";
        env = HubEnvironment.From(k => vars.GetValueOrDefault(k));
        Assert.Equal(("http://mirror:8080", "hf_x", true), (env.Endpoint, env.Token, env.Offline));
    }

    [Fact]
    public void Checksums_are_sha256_for_lfs_etags_and_git_blob_ids_otherwise()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, Encoding.ASCII.GetBytes("hello\n"));
            // `printf 'hello\n' | git hash-object --stdin` and `sha256sum`.
            Assert.Equal("ce013625030ba8dba906f756967f9e9ca394464a", FileChecksum.Compute(path, new string('0', 40)));
            Assert.Equal("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", FileChecksum.Compute(path, new string('0', 64)));
            Assert.False(FileChecksum.IsVerifiable("abc-123"));
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("model-00001-of-00002.safetensors", "*.safetensors", true)]
    [InlineData("sub/model.safetensors", "*.safetensors", true)]
    [InlineData("model.safetensors.index.json", "*.safetensors", false)]
    [InlineData("tokenizer.json", "tokenizer.jso?", true)]
    [InlineData("a.bin", "[ab].bin", true)]
    [InlineData("c.bin", "[!ab].bin", true)]
    public void Globs_match_like_fnmatch(string path, string pattern, bool expected) =>
        Assert.Equal(expected, FileGlob.Matches(path, pattern));

    [Fact]
    public void Default_selection_is_what_a_model_needs_at_the_top_level()
    {
        var files = new[] { "config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "tokenizer.json", "tokenizer_config.json", "README.md", "onnx/model.safetensors", "chat_template.jinja" };
        Assert.Equal(["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja"], HubDownloader.Select(files, null));
    }
}
