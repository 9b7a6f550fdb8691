using System.Diagnostics;
using System.Text.Json;

namespace PeftSharp.Tests.Cli;

/// <summary>
/// Decodes a TensorBoard event file with independent implementations: Google's protobuf runtime for Python (Debian
/// python3-protobuf, the Event message declared from its field numbers) and crcmod's CRC-32C (python3-crcmod),
/// checking both record checksums. .ci/run installs both packages.
/// </summary>
public static class TfEventsReader
{
    const string Python = "/usr/bin/python3";

    const string Script = """
import sys, struct, json
import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
crc = crcmod.predefined.mkCrcFun('crc-32c')
def masked(b):
    c = crc(b)
    return (((c >> 15) | (c << 17)) + 0xa282ead8) & 0xffffffff
f = descriptor_pb2.FileDescriptorProto(name='event.proto', package='tensorflow', syntax='proto3')
v = f.message_type.add(name='Value')
v.field.add(name='tag', number=1, type=9, label=1)
v.field.add(name='simple_value', number=2, type=2, label=1)
s = f.message_type.add(name='Summary')
s.field.add(name='value', number=1, type=11, label=3, type_name='.tensorflow.Value')
e = f.message_type.add(name='Event')
e.field.add(name='wall_time', number=1, type=1, label=1)
e.field.add(name='step', number=2, type=3, label=1)
e.field.add(name='file_version', number=3, type=9, label=1)
e.field.add(name='summary', number=5, type=11, label=1, type_name='.tensorflow.Summary')
pool = descriptor_pool.DescriptorPool()
pool.Add(f)
desc = pool.FindMessageTypeByName('tensorflow.Event')
Event = message_factory.GetMessageClass(desc) if hasattr(message_factory, 'GetMessageClass') else message_factory.MessageFactory(pool).GetPrototype(desc)
data = open(sys.argv[1], 'rb').read()
out, i = [], 0
while i < len(data):
    header = data[i:i+8]
    (n,) = struct.unpack('<Q', header)
    (hc,) = struct.unpack('<I', data[i+8:i+12])
    assert hc == masked(header), 'length crc'
    body = data[i+12:i+12+n]
    (bc,) = struct.unpack('<I', data[i+12+n:i+16+n])
    assert bc == masked(body), 'data crc'
    i += 16 + n
    ev = Event()
    ev.ParseFromString(body)
    if ev.file_version:
        out.append({'file_version': ev.file_version, 'wall_time': ev.wall_time})
    for val in ev.summary.value:
        out.append({'step': ev.step, 'tag': val.tag, 'value': val.simple_value, 'wall_time': ev.wall_time})
print(json.dumps(out))
""";

    public sealed record Entry(string? FileVersion, long Step, string? Tag, double Value, double WallTime);

    public static List<Entry> Read(string path)
    {
        Assert.True(File.Exists(Python), $"{Python} not found: this check needs Debian's python3 with python3-protobuf and python3-crcmod (.ci/run installs them)");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"the independent decoder failed (apt-get install python3-protobuf python3-crcmod?): {err.Result}");
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.EnumerateArray().Select(e => new Entry(
            e.TryGetProperty("file_version", out var fv) ? fv.GetString() : null,
            e.TryGetProperty("step", out var s) ? s.GetInt64() : 0,
            e.TryGetProperty("tag", out var t) ? t.GetString() : null,
            e.TryGetProperty("value", out var v) ? v.GetDouble() : 0,
            e.GetProperty("wall_time").GetDouble())).ToList();
    }
}
