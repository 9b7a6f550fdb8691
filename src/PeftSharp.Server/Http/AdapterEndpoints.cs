using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using PeftSharp.Server.Engine;

namespace PeftSharp.Server.Http;

/// <summary>Run-time adapters: POST /v1/adapters {"name","path"} loads one, DELETE /v1/adapters/{name} unloads it once
/// the requests using it have finished (the response comes then).</summary>
internal static class AdapterEndpoints
{
    public static void Map(WebApplication app, ServeEngine engine, string baseName)
    {
        app.MapPost("/v1/adapters", async (HttpContext http) =>
        {
            var r = await JsonRequest.ReadAsync(http.Request.Body, http.RequestAborted);
            string name = r.RequiredString("name"), path = r.RequiredString("path");
            if (name.Length == 0 || name == baseName) throw ApiError.BadRequest($"adapter name '{name}' is empty or names the base model", "name");
            if (engine.Adapters.Contains(name)) throw new ApiError(409, $"an adapter named '{name}' is already loaded", param: "name", code: "adapter_exists");
            if (!Directory.Exists(path)) throw new ApiError(404, $"adapter folder '{path}' does not exist", param: "path", code: "adapter_not_found");
            var report = engine.LoadAdapter(name, path);
            return Results.Text(new JsonObject
            {
                ["id"] = name, ["object"] = "model", ["parent"] = baseName,
                ["missing_tensors"] = report.Missing.Count, ["unexpected_tensors"] = report.Unexpected.Count,
            }.ToJsonString(), "application/json");
        });
        app.MapDelete("/v1/adapters/{name}", async (string name, HttpContext http) =>
        {
            await engine.UnloadAdapterAsync(name, http.RequestAborted);
            return Results.Text(new JsonObject { ["id"] = name, ["object"] = "model", ["deleted"] = true }.ToJsonString(), "application/json");
        });
    }
}
