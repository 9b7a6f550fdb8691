namespace PeftSharp.Training;

internal static class ProcessMemory
{
    /// <summary>Peak resident set size (VmHWM) in MB; the current working set where /proc is unavailable.</summary>
    public static double PeakRssMb() => ReadStatus("VmHWM:") ?? Environment.WorkingSet / 1048576.0;

    public static double CurrentRssMb() => ReadStatus("VmRSS:") ?? Environment.WorkingSet / 1048576.0;

    static double? ReadStatus(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key))
                    return Math.Round(long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0, 1);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
