using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace PeftSharp.Server.Http;

/// <summary>A request the API refuses: HTTP status and OpenAI's error body {"error":{"message","type","param","code"}}.</summary>
internal sealed class ApiError(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiError BadRequest(string message, string? param = null, string? code = null) => new(400, message, param: param, code: code);

    public JsonObject Body() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };

    public Task WriteAsync(HttpContext http)
    {
        http.Response.StatusCode = Status;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(Body().ToJsonString());
    }
}
