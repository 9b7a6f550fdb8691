using PeftSharp.Distributed;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Picks the data-parallel group from how the process was started: under Open MPI's <c>mpirun</c> (which sets
/// OMPI_COMM_WORLD_SIZE, or PMIX_RANK with PMIx launchers) an <see cref="MpiCommunicator"/>, otherwise a single process,
/// so a plain <c>peft train</c> runs exactly as without MPI.
/// </summary>
internal static class MpiLaunch
{
    public static bool UnderMpirun() =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") != null || Environment.GetEnvironmentVariable("PMIX_RANK") != null;

    public static ICommunicator Communicator() => UnderMpirun() ? MpiCommunicator.Create() : SingleProcess.Instance;

    /// <summary>
    /// Runs a command body in the group. Ranks other than 0 print nothing on stdout. When a rank fails in a group of
    /// several, it reports why and aborts the whole job (MPI_Abort): finalizing instead would wait forever for the
    /// ranks still in a collective, and mpirun returns non-zero within seconds.
    /// </summary>
    public static int Run(Func<ICommunicator, int> body)
    {
        ICommunicator comm;
        try { comm = Communicator(); }
        catch (PeftException e) { Console.Error.WriteLine($"error: {e.Message}"); return 1; }
        using (comm)
        {
            if (comm.Rank != 0) Console.SetOut(TextWriter.Null);
            int rc;
            try { rc = CliErrors.Run(() => body(comm)); }
            catch (Exception e) when (comm.Size > 1)
            {
                Console.Error.WriteLine($"error (rank {comm.Rank} of {comm.Size}): {e}");
                comm.Abort(70);
                throw;
            }
            if (rc != 0 && comm.Size > 1)
            {
                Console.Error.WriteLine($"rank {comm.Rank} of {comm.Size} failed (exit code {rc}); aborting the job");
                comm.Abort(rc);
            }
            return rc;
        }
    }
}
